"""Protein sequence features that need no downloaded weights, and the hook for a protein language model.

Default features (:class:`KmerProjection`): amino-acid (k=1, 20 values) and dipeptide (k=2, 400 values)
composition of each sequence, standardised against a fixed background and reduced to ``dim`` numbers by
a fixed seeded Gaussian random projection:

1. ``f1`` = frequencies of the 20 standard residues; ``f2`` = frequencies of the 400 ordered residue
   pairs at adjacent positions. Residues outside the 20 (X, U, B, Z, O, ...) are skipped, together with
   every pair that contains one. Case is ignored.
2. Pearson-residual standardisation against the UniProtKB/Swiss-Prot amino-acid composition ``p``
   (:data:`SWISSPROT_COMPOSITION`, normalised to sum 1): ``z1 = (f1 - p) / sqrt(p)``,
   ``z2 = (f2 - p p^T) / sqrt(p p^T) / sqrt(20)``. Each entry then has sampling variance about ``1/L``
   for a length-``L`` sequence; the ``1/sqrt(20)`` gives both blocks the same total weight.
   A sequence with fewer than two valid residues has ``z2 = 0`` (and ``z1 = 0`` with none).
3. ``features = [z1, z2] @ R`` with ``R`` of shape ``(420, dim)``, entries drawn i.i.d. from
   ``N(0, 1/dim)`` by ``numpy.random.default_rng(seed)`` (Johnson-Lindenstrauss: distances between
   composition profiles are kept up to a small distortion).

Nothing depends on which sequences are in a pack, so a node gets the same features in every subgraph.

A protein language model plugs in through :class:`~celltosg.encode.Encoder` (``name``, ``dim``,
``encode(sequences) -> (n, dim)``); its vectors are cached on disk like the text embeddings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from celltosg.encode._cache import Encoder, cached_encode
from celltosg.errors import MalformedInputError

if TYPE_CHECKING:
    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

#: Amino-acid composition of UniProtKB/Swiss-Prot (percent, release statistics), in AMINO_ACIDS order.
SWISSPROT_COMPOSITION = np.array(
    [8.25, 1.38, 5.46, 6.72, 3.86, 7.07, 2.27, 5.91, 5.80, 9.65,
     2.41, 4.06, 4.74, 3.93, 5.53, 6.64, 5.35, 6.86, 1.10, 2.92]
)  # fmt: skip

_INVALID = len(AMINO_ACIDS)
_LOOKUP = np.full(256, _INVALID, dtype=np.int64)
for _code, _residue in enumerate(AMINO_ACIDS):
    _LOOKUP[ord(_residue)] = _code
    _LOOKUP[ord(_residue.lower())] = _code


def kmer_composition(sequences: Sequence[str], k: int) -> np.ndarray:
    """Frequencies of the ``20**k`` ordered k-mers of standard residues in each sequence.

    Parameters
    ----------
    sequences
        Protein sequences (one-letter codes, any case).
    k
        K-mer length (1 = amino-acid composition, 2 = dipeptide composition).

    Returns
    -------
    np.ndarray
        float64, shape ``(len(sequences), 20**k)``; column ``sum_j code(a_j) * 20**(k-1-j)`` for the
        k-mer ``a_0 .. a_{k-1}`` with codes in :data:`AMINO_ACIDS` order. Rows sum to 1, or are all
        zero for a sequence without a valid k-mer. K-mers containing a non-standard residue are skipped.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n = len(sequences)
    width = len(AMINO_ACIDS) ** k
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n)
    joined = "".join(sequences).encode("ascii", errors="replace")
    codes = _LOOKUP[np.frombuffer(joined, dtype=np.uint8)]
    owner = np.repeat(np.arange(n), lengths)
    starts = len(codes) - k + 1
    if starts <= 0:
        return np.zeros((n, width))
    kmer = np.zeros(starts, dtype=np.int64)
    valid = owner[:starts] == owner[k - 1 :]
    for offset in range(k):
        part = codes[offset : offset + starts]
        valid &= part != _INVALID
        kmer = kmer * len(AMINO_ACIDS) + part
    counts = np.bincount(owner[:starts][valid] * width + kmer[valid], minlength=n * width)
    counts = counts.reshape(n, width).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


class KmerProjection:
    """Amino-acid + dipeptide composition, standardised and randomly projected (see the module doc).

    Parameters
    ----------
    dim
        Output size.
    seed
        Seed of the Gaussian projection; the same seed always gives the same features.
    """

    def __init__(self, dim: int = 32, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        self.dim = dim
        self.seed = seed
        self.name = f"kmer12-swissprot-gaussian-{dim}-seed{seed}"
        background = SWISSPROT_COMPOSITION / SWISSPROT_COMPOSITION.sum()
        self._p1 = background
        self._p2 = np.outer(background, background).ravel()
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((len(self._p1) + len(self._p2), dim)) / np.sqrt(dim)

    def standardised(self, sequences: Sequence[str]) -> np.ndarray:
        """Pearson residuals ``[z1, z2]`` of shape ``(n, 420)`` before the projection."""
        f1 = kmer_composition(sequences, 1)
        f2 = kmer_composition(sequences, 2)
        z1 = np.where(f1.sum(axis=1, keepdims=True) > 0, (f1 - self._p1) / np.sqrt(self._p1), 0.0)
        z2 = np.where(f2.sum(axis=1, keepdims=True) > 0, (f2 - self._p2) / np.sqrt(self._p2), 0.0)
        return np.hstack([z1, z2 / np.sqrt(len(AMINO_ACIDS))])

    def encode(self, items: list[str]) -> np.ndarray:
        """Features of shape ``(len(items), dim)``, float32."""
        return (self.standardised(items) @ self.projection).astype(np.float32)


def sequence_features(
    kg: KnowledgeGraph,
    *,
    dim: int = 32,
    encoder: Encoder | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-node protein sequence features, zero for nodes without a sequence.

    Parameters
    ----------
    kg
        The knowledge graph; ``kg.sequences`` gives ``node_index`` and ``sequence``.
    dim
        Output size of the default :class:`KmerProjection` (ignored when ``encoder`` is given).
    encoder
        A user-supplied protein language model (:class:`~celltosg.encode.Encoder`); its vectors are
        cached on disk under ``encoder.name``. ``None`` uses :class:`KmerProjection` (not cached: it is
        cheaper to recompute than to look up).
    seed
        Seed of the default projection.

    Returns
    -------
    features
        float32, shape ``(kg.n_nodes, d)``.
    mask
        bool, shape ``(kg.n_nodes,)``: True where the node has a sequence.
    """
    table = kg.sequences
    missing = {"node_index", "sequence"} - set(table.columns)
    if missing:
        raise MalformedInputError(
            f"the sequences table of knowledge graph {kg.name!r} lacks columns {sorted(missing)}; "
            "rebuild the pack with `celltosg kg build-pack`"
        )
    table = table[table["sequence"].fillna("").str.len() > 0]
    index = table["node_index"].to_numpy(dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= kg.n_nodes):
        raise MalformedInputError(
            f"knowledge graph {kg.name!r} has sequences for node indices outside 0..{kg.n_nodes - 1}; "
            "the pack is inconsistent, rebuild it"
        )
    _, keep = np.unique(index, return_index=True)
    if len(keep) < len(index):
        log.warning("%d nodes have several sequences; the first of each is used", len(index) - len(keep))
    first = np.sort(keep)
    index = index[first]
    sequences = table["sequence"].astype(str).to_numpy()[first].tolist()
    if encoder is None:
        encoder = KmerProjection(dim=dim, seed=seed)
        vectors = encoder.encode(sequences)
    else:
        vectors = cached_encode(
            sequences, encoder, cache_dir=cache_dir, batch_size=batch_size, description="protein sequences"
        )
    features = np.zeros((kg.n_nodes, encoder.dim), dtype=np.float32)
    features[index] = vectors
    mask = np.zeros(kg.n_nodes, dtype=bool)
    mask[index] = True
    return features, mask
