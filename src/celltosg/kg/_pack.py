"""The knowledge-graph pack format: six files in one directory, written atomically.

See ``docs/formats.md``. Nodes are ordered RNA first, then protein; a node's row is its index. The
Ensembl id table (every Ensembl gene id of each RNA node) is optional on reading: a pack written before
it existed falls back to the nodes' single ``ensembl_gene`` column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError, MissingSourceError
from celltosg.io_utils import atomic_dir, sha256_file

SCHEMA_VERSION = 1
NODE_COLUMNS = ("node_id", "type", "symbol", "entrez", "ensembl_gene", "uniprot", "full_name", "aliases",
                "text", "has_go_text")
EDGE_COLUMNS = ("source", "target", "kind", "weight", "provenance")
SEQUENCE_COLUMNS = ("node_index", "uniprot", "sequence")
GENESET_COLUMNS = ("collection", "term_id", "term_name", "symbol")
EDGE_KINDS = ("internal", "ppi", "ligand_receptor")
PACK_FILES = ("nodes.parquet", "edges.parquet", "sequences.parquet", "genesets.parquet")
ENSEMBL_FILE = "ensembl_ids.parquet"
ENSEMBL_COLUMNS = ("ensembl_gene", "node_id", "preferred")


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MalformedInputError(f"{what} is missing columns {missing}; expected {list(columns)}")


def _validate(nodes: pd.DataFrame, edges: pd.DataFrame, sequences: pd.DataFrame) -> None:
    types = nodes["type"].to_numpy()
    if not set(np.unique(types)) <= {"rna", "protein"}:
        raise MalformedInputError(f"node types must be 'rna' or 'protein', got {sorted(set(types))}")
    n_rna = int((types == "rna").sum())
    if (types[:n_rna] != "rna").any():
        raise MalformedInputError("nodes must list every RNA node before the protein nodes")
    if nodes["node_id"].duplicated().any():
        dup = nodes.loc[nodes["node_id"].duplicated(), "node_id"].head(5).tolist()
        raise MalformedInputError(f"duplicate node ids, for example {dup}")
    bad_kind = set(edges["kind"].unique()) - set(EDGE_KINDS)
    if bad_kind:
        raise MalformedInputError(f"unknown edge kinds {sorted(bad_kind)}; allowed {list(EDGE_KINDS)}")
    n = len(nodes)
    for column in ("source", "target"):
        values = edges[column].to_numpy()
        if len(values) and (values.min() < 0 or values.max() >= n):
            raise MalformedInputError(f"edge {column} index outside 0..{n - 1}")
    idx = sequences["node_index"].to_numpy()
    if len(idx) and (types[idx] != "protein").any():
        raise MalformedInputError("sequences must belong to protein nodes")


def ensembl_table(nodes: pd.DataFrame, ensembl_ids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every (Ensembl gene id, RNA node id, preferred) row, sorted by node then id, duplicates dropped.

    Parameters
    ----------
    nodes
        The pack's nodes; only RNA node ids may appear in the table.
    ensembl_ids
        ``ensembl_gene``, ``node_id`` and optionally ``preferred`` (bool: the source prefers this gene for
        the id, which settles an id shared by several nodes; default True); ``None`` takes each RNA
        node's ``ensembl_gene`` column.
    """
    rna = nodes.loc[nodes["type"] == "rna", ["node_id", "ensembl_gene"]]
    if ensembl_ids is None:
        ensembl_ids = rna[rna["ensembl_gene"].fillna("") != ""]
    if "preferred" not in ensembl_ids.columns:
        ensembl_ids = ensembl_ids.assign(preferred=True)
    _require_columns(ensembl_ids, ENSEMBL_COLUMNS, "ensembl_ids")
    table = ensembl_ids.loc[:, list(ENSEMBL_COLUMNS)].astype({"ensembl_gene": str, "node_id": str, "preferred": bool})
    table = table[table["ensembl_gene"].str.strip() != ""]
    position = pd.Series(np.arange(len(rna)), index=rna["node_id"].to_numpy())
    order = table["node_id"].map(position)
    if order.isna().any():
        bad = table.loc[order.isna(), "node_id"].head(5).tolist()
        raise MalformedInputError(f"ensembl_ids names node ids that are not RNA nodes, for example {bad}")
    table = table.assign(_order=order.astype(np.int64)).sort_values(["_order", "ensembl_gene"], kind="stable")
    return table.drop_duplicates(["ensembl_gene", "node_id"]).drop(columns="_order").reset_index(drop=True)


def pack_counts(nodes: pd.DataFrame, edges: pd.DataFrame, sequences: pd.DataFrame,
                ensembl_ids: pd.DataFrame | None = None) -> dict[str, int]:
    """The counts reported by ``celltosg kg info``; ``n_ensembl_ids`` counts distinct Ensembl gene ids."""
    kinds = edges["kind"].value_counts()
    return {
        "n_rna": int((nodes["type"] == "rna").sum()),
        "n_protein": int((nodes["type"] == "protein").sum()),
        "n_internal": int(kinds.get("internal", 0)),
        "n_ppi": int(kinds.get("ppi", 0)),
        "n_ligand_receptor": int(kinds.get("ligand_receptor", 0)),
        "n_sequences": int(sequences["node_index"].nunique()),
        "n_with_go_text": int(nodes["has_go_text"].astype(bool).sum()),
        "n_ensembl_ids": int(ensembl_table(nodes, ensembl_ids)["ensembl_gene"].nunique()),
    }


def _typed(nodes, edges, sequences, genesets):
    nodes = nodes.loc[:, list(NODE_COLUMNS)].reset_index(drop=True).copy()
    for column in NODE_COLUMNS:
        if column != "has_go_text":
            nodes[column] = nodes[column].fillna("").astype(str)
    nodes["has_go_text"] = nodes["has_go_text"].astype(bool)
    edges = edges.loc[:, list(EDGE_COLUMNS)].reset_index(drop=True).copy()
    edges = edges.astype({"source": "int32", "target": "int32", "weight": "float32"})
    edges["kind"] = edges["kind"].astype(str)
    edges["provenance"] = edges["provenance"].astype(str)
    sequences = sequences.loc[:, list(SEQUENCE_COLUMNS)].reset_index(drop=True).astype(
        {"node_index": "int32", "uniprot": str, "sequence": str})
    genesets = genesets.loc[:, list(GENESET_COLUMNS)].reset_index(drop=True).astype(str)
    return nodes, edges, sequences, genesets


def write_pack(out_dir: str | os.PathLike, nodes: pd.DataFrame, edges: pd.DataFrame,
               sequences: pd.DataFrame, genesets: pd.DataFrame, sources: list[dict], *,
               name: str = "custom", overwrite: bool = False, ensembl_ids: pd.DataFrame | None = None,
               text_embeddings: tuple[str, np.ndarray] | None = None) -> Path:
    """Validate and write a pack to ``out_dir`` atomically (a half-written pack is never left).

    Parameters
    ----------
    nodes, edges, sequences, genesets
        Frames with the columns in ``NODE_COLUMNS``, ``EDGE_COLUMNS``, ``SEQUENCE_COLUMNS``,
        ``GENESET_COLUMNS``; node row position is the node index used by edges and sequences.
    sources
        One dict per knowledge source: ``name``, ``version``, ``license`` and optionally ``files``.
    ensembl_ids
        Every Ensembl gene id of the RNA nodes: ``ensembl_gene``, ``node_id`` (see :func:`ensembl_table`;
        ``None`` writes the nodes' ``ensembl_gene`` column).
    text_embeddings
        ``(encoder name, vectors (n_nodes, d))`` of the node texts, shipped as ``text_embeddings.parquet``.
    """
    for frame, columns, what in ((nodes, NODE_COLUMNS, "nodes"), (edges, EDGE_COLUMNS, "edges"),
                                 (sequences, SEQUENCE_COLUMNS, "sequences"),
                                 (genesets, GENESET_COLUMNS, "genesets")):
        _require_columns(frame, columns, what)
    nodes, edges, sequences, genesets = _typed(nodes, edges, sequences, genesets)
    _validate(nodes, edges, sequences)
    ensembl_ids = ensembl_table(nodes, ensembl_ids)
    frames = dict(zip((*PACK_FILES, ENSEMBL_FILE), (nodes, edges, sequences, genesets, ensembl_ids), strict=True))
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        files = {}
        for filename, frame in frames.items():
            frame.to_parquet(tmp / filename, index=False, compression="zstd", compression_level=9)
            files[filename] = sha256_file(tmp / filename)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "sources": sources,
            "counts": pack_counts(nodes, edges, sequences, ensembl_ids),
            "files": files,
            "checksum": _combined_checksum(files),
        }
        if text_embeddings is not None:
            from celltosg.encode import META_KEY, write_embeddings_file

            encoder_name, vectors = text_embeddings
            meta[META_KEY] = write_embeddings_file(tmp, nodes["node_id"], nodes["text"], vectors, encoder_name)
        (tmp / "pack.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return Path(out_dir)


def _combined_checksum(files: dict[str, str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for filename in sorted(files):
        digest.update(f"{filename}:{files[filename]}\n".encode())
    return digest.hexdigest()


def read_pack_meta(pack_dir: Path) -> dict:
    """Read ``pack.json``; a missing or partial pack is a clear error."""
    meta_path = pack_dir / "pack.json"
    if not meta_path.is_file():
        raise MissingSourceError(
            f"{pack_dir} is not a knowledge-graph pack (no pack.json); build one with "
            "`celltosg kg build-pack --out DIR` or use the embedded pack with `--pack human`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise MalformedInputError(f"{meta_path} is not valid JSON ({error}); rebuild the pack") from error
    missing = [f for f in PACK_FILES if not (pack_dir / f).is_file()]
    if missing:
        raise MissingSourceError(f"pack {pack_dir} lacks {missing}; rebuild it with `celltosg kg build-pack`")
    return meta


def verify_pack(pack_dir: Path) -> list[str]:
    """Return the files whose checksum differs from ``pack.json`` (empty when intact)."""
    meta = read_pack_meta(pack_dir)
    digests = dict(meta["files"])
    if "text_embeddings" in meta:  # derived file, outside the graph checksum
        digests[meta["text_embeddings"]["file"]] = meta["text_embeddings"]["sha256"]
    return [f for f, digest in digests.items()
            if not (pack_dir / f).is_file() or sha256_file(pack_dir / f) != digest]
