"""Writing and reading one expression shard: an AnnData-compatible zarr (format 3) directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError, StoreError
from celltosg.io_utils import atomic_dir, dir_bytes, sha256_dir
from celltosg.store._format import (
    BLOSC_CLEVEL,
    BLOSC_CNAME,
    DEFAULT_CHUNK_ROWS,
    ValueStats,
    block_values,
    shard_obs,
)


def _row_blocks(X, chunk_rows: int):
    """Yield ``(start, block)`` over row slices of ``X`` (dense, sparse or anything row-sliceable)."""
    for start in range(0, X.shape[0], chunk_rows):
        yield start, X[start:start + chunk_rows]


def _dense(block, dtype: np.dtype) -> np.ndarray:
    if hasattr(block, "toarray"):
        block = block.toarray()
    return np.asarray(block).astype(dtype, copy=False)


def write_shard(path: str | Path, X, obs: pd.DataFrame, var: pd.DataFrame, *,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> dict:
    """Write one shard atomically and return its manifest entry.

    Parameters
    ----------
    path
        ``STORE/shards/<name>.zarr``; an existing shard of that name is replaced.
    X
        (n_rows, n_rna) counts: numpy array, scipy sparse matrix or any object with ``shape`` and
        row slicing (it is read twice: once to choose the storage type, once to write).
    obs
        n_rows rows with a ``cell_id`` column; ``shard`` and ``row`` columns are dropped.
    var
        The store's var frame (node_index, node_id, symbol), one row per column of X.

    Returns
    -------
    dict with name, n_rows, sha256, bytes, dtype and chunks ({chunk file: bytes}).
    """
    import anndata as ad
    import zarr
    from anndata.io import write_elem
    from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

    path = Path(path)
    name = path.name.removesuffix(".zarr")
    n_rows, n_cols = X.shape
    if n_cols != len(var):
        raise MalformedInputError(f"shard {name}: X has {n_cols} columns but the pack has {len(var)} RNA nodes")
    if len(obs) != n_rows:
        raise MalformedInputError(f"shard {name}: X has {n_rows} rows but obs has {len(obs)}")
    stats = ValueStats(f"shard {name}")
    for _, block in _row_blocks(X, chunk_rows):
        stats.update(block_values(block))
    dtype = stats.dtype()
    with atomic_dir(path, overwrite=True) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        codec = BloscCodec(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle=BloscShuffle.bitshuffle,
                           typesize=dtype.itemsize)
        array = root.create_array("X", shape=(n_rows, n_cols), dtype=dtype,
                                  chunks=(max(1, min(chunk_rows, n_rows)), max(1, n_cols)),
                                  shards=None, compressors=[codec, Crc32cCodec()], fill_value=0)
        for start, block in _row_blocks(X, chunk_rows):
            array[start:start + block.shape[0]] = _dense(block, dtype)
        array.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        with ad.settings.override(zarr_write_format=3):
            write_elem(root, "obs", shard_obs(obs))
            write_elem(root, "var", var.set_index(pd.Index(var["node_id"].astype(str), name="node_id"))
                       .drop(columns="node_id"))
            for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
                write_elem(root, key, {})
        root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    return {"name": name, "n_rows": int(n_rows), "sha256": sha256_dir(path), "bytes": dir_bytes(path),
            "dtype": dtype.name, "chunks": chunk_files(path)}


def chunk_files(path: str | Path) -> dict[str, int]:
    """Every file of a shard, chunks (e.g. ``X/c/0/0``) and ``zarr.json`` metadata, and its size in bytes.

    Zarr reads a missing chunk as its fill value (zeros), so the manifest records the files and readers
    check that they are all there.
    """
    root = Path(path)
    return {file.relative_to(root).as_posix(): file.stat().st_size
            for file in sorted(root.rglob("*")) if file.is_file()}


def chunk_problems(path: str | Path, entry: dict, *, extra: bool = False) -> list[str]:
    """Chunk files of shard ``entry`` that are missing or of another size on disk (and, with ``extra``,
    chunk files the manifest does not list). Empty when the manifest records no chunks (older stores)."""
    recorded = entry.get("chunks")
    if recorded is None:
        return []
    root = Path(path)
    problems = []
    for name, size in recorded.items():
        file = root / name
        if not file.is_file():
            problems.append(f"missing chunk {name}")
        elif file.stat().st_size != size:
            problems.append(f"chunk {name} has {file.stat().st_size} bytes, the manifest says {size}")
    if extra:
        problems += [f"unlisted chunk {name}" for name in chunk_files(root) if name not in recorded]
    return problems


def read_shard_obs(path: str | Path) -> pd.DataFrame:
    """The obs table inside a shard, with ``cell_id`` as a column (categoricals turned into strings)."""
    from anndata.io import read_elem

    group = _open(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs = read_elem(group["obs"])
    except Exception as error:  # zarr / anndata raise many types for damaged groups
        raise StoreError(f"the obs table of shard {path} cannot be read ({type(error).__name__}: {error}); "
                         "rerun the `celltosg build` command that made the store to rebuild it") from error
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].astype(object).where(obs[column].notna(), None)
    obs.index.name = "cell_id"
    return obs.reset_index()


def open_shard_x(path: str | Path):
    """The shard's X as a read-only zarr array of shape (n_rows, n_rna)."""
    return _open(path)["X"]


def _open(path: str | Path):
    import zarr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"shard {path} is missing or incomplete; run `celltosg store verify` on the store "
                         "and rebuild the input that wrote it")
    try:
        return zarr.open_group(path, mode="r", zarr_format=3)
    except Exception as error:  # zarr raises several types for damaged metadata
        raise StoreError(f"shard {path} cannot be opened ({error}); run `celltosg store verify` "
                         "and rebuild the input that wrote it") from error
