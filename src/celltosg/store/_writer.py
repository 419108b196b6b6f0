"""Writer primitives: shards from a matrix, the final obs / var tables, and ``create_store``."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError, StoreError
from celltosg.io_utils import atomic_dir, atomic_file, sha256_file
from celltosg.store._format import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    MANIFEST,
    NEXT_MANIFEST,
    OBS,
    RAW_CELLS_SEPARATOR,
    SHARDS,
    VAR,
    shard_path,
    var_frame,
)
from celltosg.store._lock import HOLDER, LOCK
from celltosg.store._manifest import new_manifest, read_manifest, write_manifest
from celltosg.store._shard import chunk_problems, read_shard_obs, write_shard

logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file-system-safe shard name stem (letters, digits, ``_.-``)."""
    return _UNSAFE.sub("_", text).strip("._") or "shard"


def prepare_obs(obs: pd.DataFrame, *, where: str) -> pd.DataFrame:
    """Obs with the store's required columns.

    ``cell_id`` defaults to the index, ``n_raw_cells`` to 1 and ``raw_cells`` to the cell id; list-valued
    ``raw_cells`` are joined with ``;``.
    """
    frame = obs.copy()
    if "cell_id" not in frame.columns:
        frame.insert(0, "cell_id", frame.index.astype(str))
    frame["cell_id"] = frame["cell_id"].astype(str)
    if "n_raw_cells" not in frame.columns:
        frame["n_raw_cells"] = 1
    counts = pd.to_numeric(frame["n_raw_cells"], errors="coerce")
    if counts.isna().any() or (counts < 1).any():
        raise MalformedInputError(f"{where}: n_raw_cells must be a positive integer for every row")
    frame["n_raw_cells"] = counts.astype(np.int64)
    if "raw_cells" not in frame.columns:
        frame["raw_cells"] = frame["cell_id"]
    frame["raw_cells"] = [RAW_CELLS_SEPARATOR.join(map(str, v)) if isinstance(v, list | tuple | np.ndarray)
                          else str(v) for v in frame["raw_cells"]]
    return frame.reset_index(drop=True)


def write_shards(root: str | Path, stem: str, X, obs: pd.DataFrame, var: pd.DataFrame, *,
                 shard_rows: int = DEFAULT_SHARD_ROWS, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[dict]:
    """Split rows of X (n, n_rna) and obs into shards ``<stem>-<k>`` of at most ``shard_rows`` rows.

    Returns the manifest entries of the written shards, in row order.
    """
    if shard_rows < 1:
        raise MalformedInputError(f"shard size must be at least 1 row, got {shard_rows}")
    n = X.shape[0]
    entries = []
    for k, start in enumerate(range(0, n, shard_rows)):
        stop = min(start + shard_rows, n)
        path = shard_path(Path(root), f"{stem}-{k:04d}")
        entries.append(write_shard(path, X[start:stop], obs.iloc[start:stop], var, chunk_rows=chunk_rows))
        logger.debug("wrote shard %s (%d rows)", path.name, stop - start)
    return entries


def input_finished(root: str | Path, record: dict | None) -> bool:
    """A build input is finished when its manifest record says so and every shard it wrote is on disk
    with all its chunk files at their recorded sizes."""
    if record is None or record.get("status") != "done":
        return False
    damaged = [e["name"] for e in record["shards"] if not shard_path(Path(root), e["name"]).is_dir()
               or chunk_problems(shard_path(Path(root), e["name"]), e)]
    if damaged:
        logger.warning("%s: shards %s are missing or damaged; building that input again", record.get("path"),
                       damaged)
    return not damaged


def load_progress(root: str | Path) -> tuple[dict | None, bool]:
    """The manifest a writer resumes from, and whether the writer extends a complete store.

    Returns ``(None, False)`` for a new (absent or empty) directory; an unfinished extension resumes
    from ``manifest.next.json``. A non-empty directory that is not a store is an error.
    """
    root = Path(root)
    if (root / NEXT_MANIFEST).is_file():
        return read_manifest(root, NEXT_MANIFEST), True
    if (root / MANIFEST).is_file():
        manifest = read_manifest(root)
        return manifest, bool(manifest.get("complete"))
    if root.is_dir() and any(entry.name not in (LOCK, HOLDER) for entry in root.iterdir()):
        raise StoreError(f"{root} exists and is not a TOSG store; choose an empty or new --out directory")
    return None, False


def save_progress(root: str | Path, manifest: dict, *, extending: bool) -> None:
    """Record an unfinished build: in ``manifest.next.json`` when it extends a complete store (whose
    ``manifest.json`` readers keep using), else in ``manifest.json`` marked incomplete."""
    write_manifest(root, {**manifest, "complete": False}, NEXT_MANIFEST if extending else MANIFEST)


def discard_unstarted(root: str | Path, *, fresh: bool, created: bool) -> None:
    """After a failed write, remove what it made if it built nothing worth resuming.

    A new store (``fresh``: no store was there before) whose progress records no shard is removed: the
    directory when this run ``created`` it, else what the run put in it (all but the lock file). An
    extension that added or rewrote no shard drops its ``manifest.next.json``, leaving the store as it was.
    """
    root = Path(root)

    def shards(name: str) -> set[tuple[str, str]]:
        if not (root / name).is_file():
            return set()
        try:
            inputs = read_manifest(root, name)["inputs"].values()
        except StoreError:
            return set()
        return {(e["name"], e["sha256"]) for record in inputs for e in record["shards"]}

    if fresh and not shards(MANIFEST) and not shards(NEXT_MANIFEST):
        if created:
            shutil.rmtree(root, ignore_errors=True)
            return
        for entry in root.iterdir():
            if entry.name != LOCK:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    elif (root / NEXT_MANIFEST).is_file() and shards(NEXT_MANIFEST) <= shards(MANIFEST):
        (root / NEXT_MANIFEST).unlink()


def remove_unlisted_shards(root: str | Path, manifest: dict) -> None:
    """Delete everything in ``shards/`` that no input record lists, and temporary files of the store's
    tables (left by interrupted or superseded work)."""
    shards = Path(root) / SHARDS
    shards.mkdir(parents=True, exist_ok=True)
    listed = {f"{e['name']}.zarr" for r in manifest["inputs"].values() for e in r["shards"]}
    leftovers = [entry for entry in shards.iterdir() if entry.name not in listed]
    leftovers += [entry for name in (OBS, VAR, MANIFEST, NEXT_MANIFEST, HOLDER)
                  for entry in Path(root).glob(f".{name}.tmp-*")]
    for entry in leftovers:
        logger.debug("removing leftover %s", entry)
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def finalize_store(root: str | Path, kg, manifest: dict) -> dict:
    """Assemble obs.parquet and var.parquet from the manifest's shards and mark the store complete.

    The global row order is the order of ``manifest["shards"]``. Returns the written manifest.
    """
    root = Path(root)
    frames = []
    for entry in manifest["shards"]:
        obs = read_shard_obs(shard_path(root, entry["name"]))
        if len(obs) != entry["n_rows"]:
            raise StoreError(f"shard {entry['name']} holds {len(obs)} rows, the manifest says {entry['n_rows']}; "
                             "run `celltosg store verify` and rebuild the input that wrote it")
        obs.insert(1, "shard", entry["name"])
        obs.insert(2, "row", np.arange(len(obs), dtype=np.int64))
        frames.append(obs)
    obs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"cell_id": [], "shard": [], "row": [], "n_raw_cells": [], "raw_cells": []})
    for column in obs.select_dtypes(include="object").columns:
        # inputs may disagree on a column's type (numbers in one file, text in another)
        obs[column] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in obs[column]]
    duplicated = obs["cell_id"].duplicated()
    if duplicated.any():
        raise StoreError(f"cell ids repeat across shards (for example {obs.loc[duplicated, 'cell_id'].head(3).tolist()}); "
                         "two inputs share a file name: rename one of them")
    with atomic_file(root / OBS) as tmp:
        obs.to_parquet(tmp, index=False, compression="zstd")
    with atomic_file(root / VAR) as tmp:
        var_frame(kg).to_parquet(tmp, index=False, compression="zstd")
    manifest = dict(manifest)
    manifest.update({
        "complete": True,
        "n_cells": len(obs),
        "n_raw_cells": int(obs["n_raw_cells"].sum()) if len(obs) else 0,
        "files": {OBS: sha256_file(root / OBS), VAR: sha256_file(root / VAR)},
    })
    write_manifest(root, manifest)
    (root / NEXT_MANIFEST).unlink(missing_ok=True)
    return manifest


def create_store(path: str | Path, X, obs: pd.DataFrame, kg, *, shard_size: int = DEFAULT_SHARD_ROWS,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, overwrite: bool = False):
    """Write a complete store from one matrix in one atomic step and open it.

    Parameters
    ----------
    path
        The store directory to create.
    X
        (n_cells, kg.n_rna) non-negative counts, dense or scipy sparse, columns in pack order.
    obs
        n_cells rows of metadata; ``cell_id`` (default: the index), ``n_raw_cells`` (default 1) and
        ``raw_cells`` (default: the cell id) are filled in when absent.
    kg
        The :class:`~celltosg.kg.KnowledgeGraph` whose RNA nodes are the columns.
    shard_size
        Rows per shard; shards are named ``part-0000``, ``part-0001``, ...

    Returns
    -------
    TOSGStore
    """
    from celltosg.store._reader import TOSGStore

    if X.ndim != 2 or X.shape[1] != kg.n_rna:
        raise MalformedInputError(f"X must have shape (n_cells, {kg.n_rna}) (the pack's RNA nodes), got {X.shape}")
    if len(obs) != X.shape[0]:
        raise MalformedInputError(f"obs has {len(obs)} rows but X has {X.shape[0]}")
    if Path(path).exists() and not overwrite:
        raise StoreError(f"{path} already exists; choose another path or pass overwrite=True")
    obs = prepare_obs(obs, where=str(path))
    with atomic_dir(path, overwrite=overwrite) as tmp:
        manifest = new_manifest(kg, chunk_rows=chunk_rows)
        manifest["shards"] = write_shards(tmp, "part", X, obs, var_frame(kg), shard_rows=shard_size,
                                          chunk_rows=chunk_rows)
        finalize_store(tmp, kg, manifest)
    return TOSGStore.open(path)
