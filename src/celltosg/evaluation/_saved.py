"""Benchmark splits written to disk with their graph and node features, so that every machine (a CPU
laptop, a GPU server) trains on exactly the same cells, genes, values and graph."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError
from celltosg.evaluation._split import PARTS, Split
from celltosg.io_utils import atomic_dir

logger = logging.getLogger(__name__)

INDEX_FILE = "splits.json"
_GENESET_COLUMNS = ["collection", "term_id", "term_name", "symbol"]


def _nodes_key(kg) -> str:
    """Short hash of a graph's node ids: splits over the same nodes share one node-feature file."""
    import hashlib

    return hashlib.sha256("\n".join(kg.nodes["node_id"].astype(str)).encode()).hexdigest()[:16]


def _write_split(split: Split, folder: Path, seq_dim: int) -> None:
    folder.mkdir()
    arrays = {f"{k}_{p}": getattr(split, f"{k}_{p}") for p in PARTS for k in ("X", "y")}
    if split.donors is not None:
        arrays.update({f"donors_{p}": np.asarray(split.donors[p]).astype(str) for p in PARTS})
    np.savez_compressed(folder / "arrays.npz", genes=np.asarray(split.genes).astype(str), **arrays)
    kg = split.kg
    key = _nodes_key(kg) if kg is not None else None
    meta = {"label_names": list(split.label_names), "meta": split.meta, "has_graph": kg is not None,
            "node_features": key}
    (folder / "split.json").write_text(json.dumps(meta, indent=2, default=str))
    if kg is None:
        return
    kg.nodes.to_parquet(folder / "nodes.parquet")
    kg.edges.to_parquet(folder / "edges.parquet")
    kg.sequences.to_parquet(folder / "sequences.parquet")
    (folder / "kg.json").write_text(json.dumps({"name": kg.name, "checksum": kg.checksum}))
    features_file = folder.parent / "node_features" / f"{key}.npz"
    if features_file.is_file():
        return
    if split.node_features is not None:
        text, seq_feat, seq_mask = split.node_features
    else:
        from celltosg.encode import sequence_features, text_embeddings

        text, (seq_feat, seq_mask) = text_embeddings(kg), sequence_features(kg, dim=seq_dim)
    features_file.parent.mkdir(exist_ok=True)
    np.savez_compressed(features_file, text=np.asarray(text, dtype=np.float32),
                        seq_feat=np.asarray(seq_feat, dtype=np.float32), seq_mask=np.asarray(seq_mask, dtype=bool))


def save_splits(make_split: Callable[[int], Split], seeds: Sequence[int], out_dir: str | Path, *,
                seq_dim: int = 32, overwrite: bool = False) -> Path:
    """Write ``make_split(seed)`` for every seed, with graph and node features, into ``out_dir``.

    Layout: ``splits.json`` (seeds) and one ``seed<k>/`` folder per seed holding ``arrays.npz``,
    ``split.json`` and the graph (``nodes/edges/sequences.parquet``, ``kg.json``); node features go to
    ``node_features/<hash of the node ids>.npz``, once per distinct node set.
    """
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for seed in seeds:
            _write_split(make_split(seed), tmp / f"seed{seed}", seq_dim)
        (tmp / INDEX_FILE).write_text(json.dumps({"seeds": [int(s) for s in seeds]}))
    logger.info("wrote %d splits to %s", len(seeds), out_dir)
    return Path(out_dir)


def is_saved_splits(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_splits`."""
    return (Path(path) / INDEX_FILE).is_file()


def saved_seeds(path: str | Path) -> list[int]:
    """The seeds of a saved-splits directory."""
    return list(json.loads((Path(path) / INDEX_FILE).read_text())["seeds"])


def _read_split(folder: Path) -> Split:
    from celltosg.kg import KnowledgeGraph

    meta = json.loads((folder / "split.json").read_text())
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    kg, features = None, None
    if meta["has_graph"]:
        names = json.loads((folder / "kg.json").read_text())
        kg = KnowledgeGraph(pd.read_parquet(folder / "nodes.parquet"), pd.read_parquet(folder / "edges.parquet"),
                            name=names["name"], checksum=names["checksum"],
                            sequences=pd.read_parquet(folder / "sequences.parquet"),
                            genesets=pd.DataFrame(columns=_GENESET_COLUMNS))
        with np.load(folder.parent / "node_features" / f"{meta['node_features']}.npz", allow_pickle=False) as data:
            features = (data["text"], data["seq_feat"], data["seq_mask"])
    genes = arrays.pop("genes")
    donors = {p: arrays.pop(f"donors_{p}") for p in PARTS} if "donors_test" in arrays else None
    return Split(**arrays, genes=genes, label_names=meta["label_names"], kg=kg, meta=meta["meta"],
                 node_features=features, donors=donors)


def saved_splits(path: str | Path) -> Callable[[int], Split]:
    """``seed -> Split`` reading a directory written by :func:`save_splits`."""
    root = Path(path)
    if not is_saved_splits(root):
        raise MalformedInputError(f"{root} holds no {INDEX_FILE}; write it with `celltosg benchmark ... --save-splits`")
    seeds = saved_seeds(root)

    def make(seed: int) -> Split:
        if seed not in seeds:
            raise MalformedInputError(f"{root} has splits for seeds {seeds}, not {seed}; ask for fewer seeds")
        return _read_split(root / f"seed{seed}")

    return make
