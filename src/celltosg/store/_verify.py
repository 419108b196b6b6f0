"""Store checks (``celltosg store verify``) and summaries (``celltosg store info``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from celltosg.errors import StoreError
from celltosg.io_utils import dir_bytes, sha256_dir, sha256_file
from celltosg.store._format import NEXT_MANIFEST, OBS, SHARDS, VAR, shard_path
from celltosg.store._lock import holder, is_locked
from celltosg.store._manifest import read_manifest
from celltosg.store._shard import chunk_problems

# info() groups meta-cells by the first of these columns that the store has.
INFO_GROUPS = {
    "by_tissue": ("tissue_general", "tissue"),
    "by_disease": ("disease",),
    "by_cell_type": ("cell_type",),
    "by_source": ("source", "dataset_id"),
}


def verify_store(path: str | Path) -> list[str]:
    """Check every shard, chunk file and table of a store against its manifest.

    An unfinished build is checked too: the shards of its finished inputs are verified, and only
    shards no record lists are called unlisted. Returns one line per problem (missing, damaged or corrupt
    shard, missing or extra chunk file, table checksum or row-count mismatch, unlisted shard, unfinished
    build or extension); an empty list means the store is sound.
    """
    root = Path(path)
    manifest = read_manifest(root)
    problems = []
    busy = is_locked(root)
    if not manifest.get("complete"):
        problems.append(_unfinished(root, "the build", busy))
    expected = _recorded_shards(manifest)
    if (root / NEXT_MANIFEST).is_file():
        problems.append(_unfinished(root, f"an extension of the store ({NEXT_MANIFEST})", busy))
        try:
            extension = _recorded_shards(read_manifest(root, NEXT_MANIFEST))
        except StoreError as error:
            problems.append(str(error))
            extension = {}
        expected.update({name: entry for name, entry in extension.items() if name not in expected})
    for entry in expected.values():
        problems += _shard_problems(root, entry)
    shards_dir = root / SHARDS
    if shards_dir.is_dir():
        for extra in sorted(shards_dir.glob("*.zarr")):
            if extra.name.removesuffix(".zarr") not in expected:
                why = ("the build under way has not recorded it yet" if busy else
                       "left by an interrupted build; rerun the build to finish it, or delete the directory")
                problems.append(f"unlisted shard {extra.name}: no input record lists it ({why})")
    tables_sound = True
    for name, checksum in manifest.get("files", {}).items():
        file = root / name
        if not file.is_file():
            problems.append(f"missing {name}; rerun the build to rewrite it")
            tables_sound = False
        elif sha256_file(file) != checksum:
            problems.append(f"corrupt {name}: sha256 differs from the manifest; rerun the build to rewrite it")
            tables_sound = False
    if manifest.get("complete") and tables_sound:
        # footers only: row counts need no data read (and start none of Arrow's reader threads)
        n_obs = pq.ParquetFile(root / OBS).metadata.num_rows
        n_var = pq.ParquetFile(root / VAR).metadata.num_rows
        n_rows = sum(entry["n_rows"] for entry in manifest["shards"])
        if not n_obs == n_rows == manifest["n_cells"]:
            problems.append(f"row counts disagree: obs.parquet {n_obs}, shards {n_rows}, manifest {manifest['n_cells']}")
        if n_var != manifest["n_nodes"]:
            problems.append(f"var.parquet has {n_var} rows, the manifest says {manifest['n_nodes']} RNA nodes")
    return problems


def _recorded_shards(manifest: dict) -> dict[str, dict]:
    """Every shard a manifest records, by name: its store shards and those of its finished inputs."""
    shards = {entry["name"]: entry for entry in manifest["shards"]}
    for record in manifest.get("inputs", {}).values():
        if record.get("status") == "done":
            shards.update({entry["name"]: entry for entry in record["shards"]})
    return shards


def _shard_problems(root: Path, entry: dict) -> list[str]:
    name, expected = entry["name"], entry["sha256"]
    directory = shard_path(root, name)
    if not directory.is_dir():
        return [f"missing shard {name}: {directory} does not exist (manifest sha256 {expected}); rerun the "
                "`celltosg build` command that made the store to rebuild it"]
    if "chunks" not in entry:
        problems = [f"shard {name} records no chunk files (written by an older celltosg), so missing chunks "
                    "cannot be told from zeros; rebuild the store"]
    else:
        problems = [f"damaged shard {name}: {problem}; rerun the `celltosg build` command that made the store "
                    "to rebuild it" for problem in chunk_problems(directory, entry, extra=True)]
    actual = sha256_dir(directory)
    if actual != expected:
        problems.append(f"corrupt shard {name}: sha256 {actual} differs from the manifest's {expected}; rerun "
                        "the `celltosg build` command that made the store to rebuild it")
    return problems


def _unfinished(root: Path, what: str, busy: bool) -> str:
    if busy:
        return f"{what} is incomplete: it is under way now ({holder(root)}); verify again when it has finished"
    return f"{what} is incomplete: it was interrupted; rerun the same `celltosg build` command to finish it"


def _counts(obs: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, int]:
    for column in columns:
        if column in obs.columns:
            counts = obs[column].astype(object).fillna("unknown").astype(str).value_counts()
            return {str(k): int(v) for k, v in counts.items()}
    return {}


def _value_type(manifest: dict) -> str:
    types = sorted({r.get("value_type", "unrecorded") for r in manifest.get("inputs", {}).values()})
    return types[0] if len(types) == 1 else f"mixed: {', '.join(types)}" if types else "unrecorded"


def store_info(store) -> dict:
    """Sizes and counts of an open :class:`TOSGStore`.

    Keys: path, kg_name, kg_checksum, n_cells, n_raw_cells, n_nodes, n_shards, n_inputs,
    expression_bytes (bytes of the shards on disk), bytes_per_cell, bytes_per_value, value_type (what the
    inputs held: ``counts``, ``counts_from_lognorm``, ``non_integer``, ``mixed: ...`` or ``unrecorded``),
    and the meta-cell counts by_tissue, by_disease, by_cell_type, by_source (label -> count).
    """
    manifest = store.manifest
    expression_bytes = sum(dir_bytes(shard_path(store.root, e["name"])) for e in manifest["shards"]
                           if shard_path(store.root, e["name"]).is_dir())
    n_cells, n_nodes = store.n_cells, store.n_nodes
    info = {
        "path": str(store.root),
        "kg_name": manifest.get("kg_name"),
        "kg_checksum": manifest["kg_checksum"],
        "n_cells": n_cells,
        "n_raw_cells": int(manifest.get("n_raw_cells", 0)),
        "n_nodes": n_nodes,
        "n_shards": len(manifest["shards"]),
        "n_inputs": len(manifest.get("inputs", {})),
        "expression_bytes": int(expression_bytes),
        "bytes_per_cell": expression_bytes / n_cells if n_cells else 0.0,
        "bytes_per_value": expression_bytes / (n_cells * n_nodes) if n_cells and n_nodes else 0.0,
        "value_type": _value_type(manifest),
    }
    for key, columns in INFO_GROUPS.items():
        info[key] = _counts(store.obs, columns)
    return info
