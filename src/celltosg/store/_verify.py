"""Store checks (``celltosg store verify``) and summaries (``celltosg store info``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from celltosg.io_utils import dir_bytes, sha256_dir, sha256_file
from celltosg.store._format import OBS, SHARDS, VAR, shard_path
from celltosg.store._manifest import read_manifest

# info() groups meta-cells by the first of these columns that the store has.
INFO_GROUPS = {
    "by_tissue": ("tissue_general", "tissue"),
    "by_disease": ("disease",),
    "by_cell_type": ("cell_type",),
    "by_source": ("source", "dataset_id"),
}


def verify_store(path: str | Path) -> list[str]:
    """Check every shard and table of a store against its manifest.

    Returns one line per problem (missing or corrupt shard, table checksum or row-count mismatch,
    unlisted shard, incomplete build); an empty list means the store is sound.
    """
    root = Path(path)
    manifest = read_manifest(root)
    problems = []
    if not manifest.get("complete"):
        problems.append("the build is incomplete (interrupted); rerun the same `celltosg build` command")
    listed = set()
    for entry in manifest["shards"]:
        name, expected = entry["name"], entry["sha256"]
        listed.add(name)
        directory = shard_path(root, name)
        if not directory.is_dir():
            problems.append(f"missing shard {name}: {directory} does not exist (manifest sha256 {expected}); "
                            "rebuild the input that wrote it (rerun the build after removing its manifest entry)")
            continue
        actual = sha256_dir(directory)
        if actual != expected:
            problems.append(f"corrupt shard {name}: sha256 {actual} differs from the manifest's {expected}; "
                            "delete the shard and rebuild the input that wrote it")
    shards_dir = root / SHARDS
    if shards_dir.is_dir():
        for extra in sorted(shards_dir.glob("*.zarr")):
            if extra.name.removesuffix(".zarr") not in listed:
                problems.append(f"unlisted shard {extra.name}: not in the manifest (left by an interrupted "
                                "build); rerun the build to finish it, or delete the directory")
    tables_sound = True
    for name, expected in manifest.get("files", {}).items():
        file = root / name
        if not file.is_file():
            problems.append(f"missing {name}; rerun the build to rewrite it")
            tables_sound = False
        elif sha256_file(file) != expected:
            problems.append(f"corrupt {name}: sha256 differs from the manifest; rerun the build to rewrite it")
            tables_sound = False
    if manifest.get("complete") and tables_sound:
        n_obs = pd.read_parquet(root / OBS, columns=["cell_id"]).shape[0]
        n_var = pd.read_parquet(root / VAR, columns=["node_index"]).shape[0]
        n_rows = sum(entry["n_rows"] for entry in manifest["shards"])
        if not n_obs == n_rows == manifest["n_cells"]:
            problems.append(f"row counts disagree: obs.parquet {n_obs}, shards {n_rows}, manifest {manifest['n_cells']}")
        if n_var != manifest["n_nodes"]:
            problems.append(f"var.parquet has {n_var} rows, the manifest says {manifest['n_nodes']} RNA nodes")
    return problems


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
