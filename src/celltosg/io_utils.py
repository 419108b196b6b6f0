"""Atomic writes and checksums shared by every writer in the package."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

_BLOCK = 1 << 20


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def _make_parent(path: Path) -> None:
    """Create ``path``'s folder; a file in the way is a clear error, not ``FileExistsError``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        from celltosg.errors import MalformedInputError

        raise MalformedInputError(f"cannot write {path}: a part of its folder {path.parent} is a file, not a "
                                  "directory; choose an output path in a directory") from error


def read_h5ad(path: str | os.PathLike):
    """Read an ``.h5ad`` file; a damaged or truncated one is a clear error naming it."""
    import anndata as ad

    from celltosg.errors import MalformedInputError

    try:
        return ad.read_h5ad(path)
    except Exception as error:  # h5py / anndata raise many types for damaged files
        raise MalformedInputError(f"{path}: cannot be read as an h5ad file ({type(error).__name__}: {error}); "
                                  "check that the file is complete and was written by anndata") from error


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory that is renamed onto ``path`` on success.

    On any exception the temporary directory is removed and ``path`` is untouched.
    """
    final = Path(path)
    _make_parent(final)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            if not overwrite:
                raise FileExistsError(f"{final} already exists; remove it or pass overwrite=True")
            backup = _temporary_sibling(final)
            final.rename(backup)
            tmp.rename(final)
            shutil.rmtree(backup)
        else:
            tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling file path that replaces ``path`` atomically on success."""
    final = Path(path)
    _make_parent(final)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of one file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def sha256_dir(path: str | os.PathLike) -> str:
    """Hex SHA-256 over every file below ``path`` (relative names and contents, sorted)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def dir_bytes(path: str | os.PathLike) -> int:
    """Total bytes of the files below ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
