"""Node-text embeddings shipped inside a knowledge-graph pack: int8 codes with one float32 scale per row.

``text_embeddings.parquet`` has one row per node: ``node_id``, ``text_sha256`` (first 16 hex digits of the
SHA-256 of the node's text, so a row whose text has since changed is recomputed, not reused), ``scale``
and ``codes`` (384 int8). A vector is ``codes * scale``; ``scale = max|v| / 127``, so every component is
off by at most ``scale / 2``. ``pack.json`` records the file under the key ``text_embeddings``: file name,
sha256, the encoder's cache name (model and package version), dimension and dtype. The pack's own
``checksum`` (the graph's identity) does not cover this derived file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.encode._cache import text_hash
from celltosg.errors import MalformedInputError
from celltosg.io_utils import atomic_file, sha256_file

log = logging.getLogger(__name__)

EMBEDDINGS_FILE = "text_embeddings.parquet"
META_KEY = "text_embeddings"
_HASH_CHARS = 16


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 codes (n, d) and float32 scales (n,) of float vectors (n, d); zero rows get scale 0."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scale = (np.abs(vectors).max(axis=1, initial=0.0) / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / safe[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def dequantize(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 vectors (n, d) from int8 ``codes`` (n, d) and ``scale`` (n,)."""
    return codes.astype(np.float32) * np.asarray(scale, dtype=np.float32)[:, None]


def short_hash(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``text``: the key that ties a shipped row to its text."""
    return text_hash(text)[:_HASH_CHARS]


def write_embeddings_file(directory: str | os.PathLike, node_ids, texts, vectors: np.ndarray,
                          encoder_name: str) -> dict:
    """Write ``text_embeddings.parquet`` into a pack directory atomically.

    Parameters
    ----------
    node_ids, texts
        One per node, in pack order.
    vectors
        float (n_nodes, d): the encoder's vectors of ``texts``.
    encoder_name
        The encoder's ``name`` (model and version); readers use the file only for this encoder.

    Returns
    -------
    dict
        The ``pack.json`` entry: ``file``, ``sha256``, ``encoder``, ``dim``, ``dtype``, ``n_nodes``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    node_ids, texts = list(node_ids), list(texts)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or not len(node_ids) == len(texts) == len(vectors):
        raise MalformedInputError(f"text embeddings of shape {vectors.shape} do not match {len(node_ids)} nodes; "
                                  "pass one vector per node")
    codes, scale = quantize(vectors)
    dim = vectors.shape[1]
    table = pa.table({
        "node_id": pa.array(node_ids, pa.string()),
        "text_sha256": pa.array([short_hash(t) for t in texts], pa.string()),
        "scale": pa.array(scale, pa.float32()),
        "codes": pa.FixedSizeListArray.from_arrays(pa.array(codes.ravel(), pa.int8()), dim),
    })
    path = Path(directory) / EMBEDDINGS_FILE
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=9)
    return {"file": EMBEDDINGS_FILE, "sha256": sha256_file(path), "encoder": encoder_name, "dim": int(dim),
            "dtype": "int8 codes x float32 scale per row", "n_nodes": len(node_ids)}


@dataclass(frozen=True)
class ShippedVectors:
    """Shipped vectors matched onto a graph's nodes: ``vectors`` float32 (n_nodes, d), ``found`` bool (n_nodes,)."""

    vectors: np.ndarray
    found: np.ndarray


def shipped_entry(pack_dir: Path | None) -> dict | None:
    """The ``text_embeddings`` entry of a pack's ``pack.json`` (None when the pack ships none)."""
    if pack_dir is None or not (Path(pack_dir) / "pack.json").is_file():
        return None
    return json.loads((Path(pack_dir) / "pack.json").read_text()).get(META_KEY)


def read_shipped(pack_dir: Path, node_ids, texts, encoder_name: str, dim: int) -> ShippedVectors | None:
    """The pack's shipped vectors of the given nodes, or None when it ships none for this encoder.

    A node is ``found`` when the file has its id with the hash of its current text. A file whose sha256
    differs from ``pack.json`` is an error (a damaged or hand-edited pack).
    """
    import pyarrow.parquet as pq

    entry = shipped_entry(pack_dir)
    if entry is None:
        return None
    if entry.get("encoder") != encoder_name or int(entry.get("dim", -1)) != dim:
        log.info("pack %s ships text embeddings of %s, not of %s; computing them", pack_dir, entry.get("encoder"),
                 encoder_name)
        return None
    path = Path(pack_dir) / EMBEDDINGS_FILE
    if not path.is_file() or sha256_file(path) != entry.get("sha256"):
        raise MalformedInputError(f"{path} is missing or does not match its sha256 in pack.json; restore the pack "
                                  "or rebuild it with `celltosg kg build-pack`")
    table = pq.read_table(path)
    codes = table.column("codes").combine_chunks().flatten().to_numpy().reshape(len(table), dim)
    position = pd.Series(np.arange(len(table)), index=table.column("node_id").to_pandas())
    rows = position.reindex(pd.Index(list(node_ids))).to_numpy()
    hashes = table.column("text_sha256").to_numpy(zero_copy_only=False)
    wanted = np.array([short_hash(t) for t in texts], dtype=object)
    found = ~np.isnan(rows)
    rows = np.where(found, rows, 0).astype(np.int64)
    found &= hashes[rows] == wanted
    vectors = np.zeros((len(wanted), dim), dtype=np.float32)
    scale = table.column("scale").to_numpy()
    vectors[found] = dequantize(codes[rows[found]], scale[rows[found]])
    return ShippedVectors(vectors, found)


def attach_text_embeddings(pack_dir: str | os.PathLike, *, encoder=None,
                           cache_dir: str | os.PathLike | None = None) -> dict:
    """Encode the nodes of an existing pack (cached) and add ``text_embeddings.parquet`` to it.

    Only the new file and the ``text_embeddings`` entry of ``pack.json`` are written; node ids, order and
    the other files stay as they are. Returns the ``pack.json`` entry.
    """
    from celltosg.encode._text import MiniLMEncoder, encode_texts

    pack_dir = Path(pack_dir)
    meta_path = pack_dir / "pack.json"
    if not meta_path.is_file():
        raise MalformedInputError(f"{pack_dir} is not a knowledge-graph pack (no pack.json)")
    nodes = pd.read_parquet(pack_dir / "nodes.parquet", columns=["node_id", "text"])
    texts = nodes["text"].fillna("").astype(str).tolist()
    encoder = encoder if encoder is not None else MiniLMEncoder()
    vectors = encode_texts(texts, encoder=encoder, cache_dir=cache_dir)
    entry = write_embeddings_file(pack_dir, nodes["node_id"].tolist(), texts, vectors, encoder.name)
    meta = json.loads(meta_path.read_text())
    meta[META_KEY] = entry
    with atomic_file(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return entry
