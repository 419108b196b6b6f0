"""The store manifest: ``manifest.json`` read and written atomically.

Keys: ``schema_version``, ``format``, ``complete`` (False while a build is under way), ``kg_pack``
(embedded pack name or pack directory), ``kg_name``, ``kg_checksum``, ``n_cells``, ``n_raw_cells``,
``n_nodes`` (RNA nodes = columns), ``chunk_rows``, ``shards`` (list of {name, n_rows, sha256, bytes,
dtype, chunks}; ``chunks`` maps every file of the shard, chunk and ``zarr.json``, to its size in bytes),
``files`` (sha256 of obs.parquet and var.parquet), ``inputs`` ({input key: record}) and ``build`` (the build options).

A build that extends a complete store keeps ``manifest.json`` as it is (readers keep seeing the old
contents) and records its progress in ``manifest.next.json`` until the new manifest replaces the old one.
"""

from __future__ import annotations

import json
from pathlib import Path

from celltosg.errors import StoreError
from celltosg.io_utils import atomic_file
from celltosg.store._format import FORMAT_NAME, MANIFEST, SCHEMA_VERSION


def kg_reference(kg) -> str:
    """How a store records its pack: the embedded pack's name, else the pack directory's absolute path."""
    from celltosg.kg import EMBEDDED_PACKS, embedded_pack_path

    pack_dir = Path(kg.pack_dir).resolve() if kg.pack_dir is not None else None
    for name in EMBEDDED_PACKS:
        if pack_dir is not None and pack_dir == embedded_pack_path(name).resolve():
            return name
    if pack_dir is None:
        raise StoreError(f"knowledge graph {kg.name!r} has no pack directory; load it with KnowledgeGraph.load")
    return str(pack_dir)


def new_manifest(kg, *, chunk_rows: int) -> dict:
    """An empty, incomplete manifest for a store over ``kg``'s RNA nodes."""
    return {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT_NAME,
        "complete": False,
        "kg_pack": kg_reference(kg),
        "kg_name": kg.name,
        "kg_checksum": kg.checksum,
        "n_cells": 0,
        "n_raw_cells": 0,
        "n_nodes": int(kg.n_rna),
        "chunk_rows": int(chunk_rows),
        "shards": [],
        "files": {},
        "inputs": {},
        "build": {},
    }


def read_manifest(root: str | Path, name: str = MANIFEST) -> dict:
    """Read and check ``STORE/manifest.json`` (or ``name``); a missing or foreign directory is a clear error."""
    root = Path(root)
    path = root / name
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is a file, not a TOSG store directory; pass the store's directory")
    if not root.is_dir():
        raise StoreError(f"no TOSG store at {root}: the directory does not exist; build one with "
                         "`celltosg build INPUT... --out STORE`")
    if not path.is_file():
        raise StoreError(f"{root} is not a TOSG store (no {name}); build one with "
                         "`celltosg build INPUT... --out STORE`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise StoreError(f"{path} is not valid JSON ({error}); rerun the build to rewrite it") from error
    if manifest.get("format") != FORMAT_NAME:
        raise StoreError(f"{path} is not a celltosg store manifest (format {manifest.get('format')!r})")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(f"store {root} has schema version {version}; this celltosg reads version "
                         f"{SCHEMA_VERSION}. Rebuild the store with this version")
    return manifest


def write_manifest(root: str | Path, manifest: dict, name: str = MANIFEST) -> None:
    """Replace ``STORE/manifest.json`` (or ``name``) atomically (sorted keys: equal content, equal bytes)."""
    with atomic_file(Path(root) / name) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
