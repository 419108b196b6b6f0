"""KnowledgeGraph: a loaded pack with gene-identifier mapping, subgraphs and edge indices."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MissingSourceError, UnknownIdentifierError
from celltosg.kg._pack import EDGE_KINDS, ENSEMBL_FILE, ensembl_table, pack_counts, read_pack_meta

# An Ensembl gene id with an optional version and GENCODE's PAR_Y suffix (ENSG00000182378.14_PAR_Y).
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*G\d+)(?:\.\d+)?(?:_PAR_Y)?$", re.IGNORECASE)
EMBEDDED_PACKS = ("human",)


def embedded_pack_path(name: str) -> Path:
    """Directory of a pack shipped inside the package (``human``)."""
    return Path(str(resources.files("celltosg") / "data" / "kg" / name))


@dataclass(frozen=True)
class GeneMapping:
    """Result of mapping gene identifiers onto RNA nodes.

    ``rna_index``: int64 (n_ids,), the RNA node of each identifier or -1; ``unmapped``: the identifiers
    that did not map, in input order; ``rate``: the fraction that mapped.
    """

    rna_index: np.ndarray
    unmapped: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        n = len(self.rna_index)
        return float((self.rna_index >= 0).sum() / n) if n else 0.0


def _strip_version(identifier: str) -> str:
    match = _ENSEMBL_VERSION.match(identifier)
    return match.group(1) if match else identifier


class KnowledgeGraph:
    """A human (or custom) knowledge graph of RNA and protein nodes.

    Nodes are RNA first (indices ``0..n_rna-1``), then protein. Use :meth:`load` to open a pack.
    """

    def __init__(self, nodes: pd.DataFrame, edges: pd.DataFrame, *, name: str, checksum: str,
                 pack_dir: Path | None = None, sequences: pd.DataFrame | None = None,
                 genesets: pd.DataFrame | None = None, parent_index: np.ndarray | None = None,
                 ensembl_ids: pd.DataFrame | None = None):
        self.nodes = nodes.reset_index(drop=True)
        self.edges = edges.reset_index(drop=True)
        self.name = name
        self.checksum = checksum
        self.pack_dir = pack_dir
        self._sequences = sequences
        self._genesets = genesets
        self._ensembl_ids = ensembl_ids
        # For subgraphs: index of each node in the graph it was taken from (None for a full pack).
        self.parent_index = parent_index

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, pack: str | os.PathLike = "human") -> KnowledgeGraph:
        """Load an embedded pack by name (``"human"``) or a pack directory."""
        if isinstance(pack, str) and pack in EMBEDDED_PACKS:
            pack_dir = embedded_pack_path(pack)
        else:
            pack_dir = Path(pack)
        meta = read_pack_meta(pack_dir)
        nodes = pd.read_parquet(pack_dir / "nodes.parquet")
        edges = pd.read_parquet(pack_dir / "edges.parquet")
        ensembl_path = pack_dir / ENSEMBL_FILE
        ensembl_ids = pd.read_parquet(ensembl_path) if ensembl_path.is_file() else None
        return cls(nodes, edges, name=meta.get("name", pack_dir.name), checksum=meta["checksum"],
                   pack_dir=pack_dir, ensembl_ids=ensembl_ids)

    @classmethod
    def load_version(cls, pack: str | os.PathLike, checksum: str, *, user: str) -> KnowledgeGraph:
        """:meth:`load` ``pack`` and require the ``checksum`` that ``user`` (e.g. ``"checkpoint X"``) was built on."""
        kg = cls.load(pack)
        if kg.checksum != checksum:
            raise MissingSourceError(f"{user} was built on pack {str(pack)!r} with checksum {checksum[:12]}, but "
                                     f"that pack now has {kg.checksum[:12]}; use the same pack version or rebuild")
        return kg

    @property
    def sequences(self) -> pd.DataFrame:
        """Protein sequences: ``node_index``, ``uniprot``, ``sequence``."""
        if self._sequences is None:
            self._sequences = pd.read_parquet(self.pack_dir / "sequences.parquet")
        return self._sequences

    @property
    def genesets(self) -> pd.DataFrame:
        """Gene-set membership in long format: ``collection``, ``term_id``, ``term_name``, ``symbol``."""
        if self._genesets is None:
            self._genesets = pd.read_parquet(self.pack_dir / "genesets.parquet")
        return self._genesets

    @cached_property
    def ensembl_ids(self) -> pd.DataFrame:
        """Every Ensembl gene id of the RNA nodes: ``ensembl_gene``, ``node_id`` (several rows per node).

        From the pack's ``ensembl_ids.parquet``; a pack without it gives each node's ``ensembl_gene``.
        """
        table = self._ensembl_ids
        if table is not None:
            rna_ids = self.nodes["node_id"].to_numpy()[: self.n_rna]
            table = table[table["node_id"].isin(rna_ids)]
        return ensembl_table(self.nodes, table)

    # ------------------------------------------------------------------ counts
    @cached_property
    def n_rna(self) -> int:
        return int((self.nodes["type"] == "rna").sum())

    @property
    def n_protein(self) -> int:
        return self.n_nodes - self.n_rna

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def rna_symbols(self) -> np.ndarray:
        """Symbols of the RNA nodes, shape (n_rna,)."""
        return self.nodes["symbol"].to_numpy()[: self.n_rna]

    def counts(self) -> dict[str, int]:
        """Node, edge, sequence and GO-text counts (the keys of ``celltosg kg info --json``)."""
        return pack_counts(self.nodes, self.edges, self.sequences, self.ensembl_ids)

    def __repr__(self) -> str:
        return (f"KnowledgeGraph(name={self.name!r}, n_rna={self.n_rna}, n_protein={self.n_protein}, "
                f"n_edges={len(self.edges)})")

    # ----------------------------------------------------------------- mapping
    @cached_property
    def _lookup(self) -> dict[str, int]:
        """Upper-cased identifier -> RNA node index; primary identifiers win over aliases.

        An alias of several nodes is left out. An Ensembl id of several nodes goes to the one node where
        it is ``preferred`` (NCBI's gene2ensembl match), else it is left out too. Each node's own
        ``entrez`` and ``symbol`` are written last, so they always win.
        """
        rna = self.nodes.iloc[: self.n_rna]
        index = np.arange(self.n_rna)
        table: dict[str, int] = {}
        alias_rows = [(a.upper(), i) for i, aliases in zip(index, rna["aliases"], strict=True)
                      for a in aliases.split("|") if a]
        alias_counts = pd.Series([a for a, _ in alias_rows], dtype=object).value_counts()
        table.update((a, int(i)) for a, i in alias_rows if alias_counts[a] == 1)
        position = pd.Series(index, index=rna["node_id"].to_numpy())
        ensembl = self.ensembl_ids.assign(key=lambda t: t["ensembl_gene"].str.upper(),
                                          node=lambda t: position[t["node_id"]].to_numpy())
        by_id = ensembl.groupby("key")
        keep = (by_id["node"].transform("size") == 1) | (ensembl["preferred"]
                                                          & (by_id["preferred"].transform("sum") == 1))
        table.update(zip(ensembl.loc[keep, "key"], ensembl.loc[keep, "node"].astype(int), strict=True))
        for column in ("entrez", "symbol"):
            table.update((str(v).upper(), int(i)) for v, i in zip(rna[column], index, strict=True) if v)
        return table

    def rna_positions(self, node_ids: Iterable[str]) -> np.ndarray:
        """RNA node index of each RNA ``node_id``, int64 (n,); an id absent from the graph is an error."""
        position = {node_id: i for i, node_id in enumerate(self.nodes["node_id"].to_numpy()[: self.n_rna])}
        ids = [str(i) for i in node_ids]
        missing = [i for i in ids if i not in position]
        if missing:
            raise UnknownIdentifierError(f"{len(missing)} RNA node ids are not in pack {self.name!r} (first: "
                                         f"{missing[:5]}); use the pack they were taken from")
        return np.array([position[i] for i in ids], dtype=np.int64)

    def map_genes(self, identifiers: Iterable[str]) -> GeneMapping:
        """Map symbols, aliases, Ensembl gene ids (any of a gene's, with or without version) or Entrez ids
        to RNA nodes.

        Matching is case-insensitive. Returns a :class:`GeneMapping` with -1 for unmapped identifiers.
        """
        ids = [str(i) for i in identifiers]
        lookup = self._lookup
        index = np.fromiter((lookup.get(_strip_version(i.strip()).upper(), -1) for i in ids),
                            dtype=np.int64, count=len(ids))
        unmapped = [i for i, j in zip(ids, index, strict=True) if j < 0]
        return GeneMapping(rna_index=index, unmapped=unmapped)

    # ---------------------------------------------------------------- subgraph
    def subgraph(self, genes: Sequence[str] | np.ndarray, *, strict: bool = False) -> KnowledgeGraph:
        """The subgraph induced by a gene list.

        RNA nodes of the mapped genes come first in input order (duplicates dropped), then their
        protein nodes in pack order; edges among the kept nodes are kept. ``genes`` may be identifiers
        or an integer array of RNA node indices. With ``strict`` an unmapped gene is an error.
        """
        genes = np.asarray(genes)
        if genes.dtype.kind in "iu":
            rna = genes.astype(np.int64)
            if len(rna) and (rna.min() < 0 or rna.max() >= self.n_rna):
                raise UnknownIdentifierError(f"RNA node indices must lie in 0..{self.n_rna - 1}")
        else:
            mapping = self.map_genes(genes)
            if strict and mapping.unmapped:
                raise UnknownIdentifierError(
                    f"{len(mapping.unmapped)} genes are not in the knowledge graph "
                    f"(first: {mapping.unmapped[:10]}); drop them or map them to known symbols")
            rna = mapping.rna_index[mapping.rna_index >= 0]
        rna = pd.unique(rna)
        src = self.edges["source"].to_numpy()
        dst = self.edges["target"].to_numpy()
        internal = (self.edges["kind"] == "internal").to_numpy()
        proteins = np.unique(dst[internal & np.isin(src, rna)])
        keep = np.concatenate([rna, proteins]).astype(np.int64)
        new_index = np.full(self.n_nodes, -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        edge_keep = (new_index[src] >= 0) & (new_index[dst] >= 0)
        edges = self.edges.loc[edge_keep].copy()
        edges["source"] = new_index[edges["source"].to_numpy()].astype(np.int32)
        edges["target"] = new_index[edges["target"].to_numpy()].astype(np.int32)
        sequences = self.sequences
        sequences = sequences.loc[new_index[sequences["node_index"].to_numpy()] >= 0].copy()
        sequences["node_index"] = new_index[sequences["node_index"].to_numpy()].astype(np.int32)
        parent = keep if self.parent_index is None else self.parent_index[keep]
        return KnowledgeGraph(self.nodes.iloc[keep], edges, name=f"{self.name}[subgraph]",
                              checksum=self.checksum, pack_dir=self.pack_dir, sequences=sequences,
                              genesets=self._genesets, parent_index=parent, ensembl_ids=self._ensembl_ids)

    # ------------------------------------------------------------ edge indices
    def _edge_arrays(self, kind: str, undirected: bool | None):
        if kind not in EDGE_KINDS:
            raise UnknownIdentifierError(f"unknown edge kind {kind!r}; choose one of {list(EDGE_KINDS)}")
        mask = (self.edges["kind"] == kind).to_numpy()
        src = self.edges["source"].to_numpy()[mask].astype(np.int64)
        dst = self.edges["target"].to_numpy()[mask].astype(np.int64)
        weight = self.edges["weight"].to_numpy()[mask].astype(np.float32)
        if undirected is None:
            undirected = kind == "ppi"
        if undirected:
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
            weight = np.concatenate([weight, weight])
        return src, dst, weight

    def edge_index(self, kind: str, undirected: bool | None = None):
        """Edges of one kind as a ``torch.LongTensor`` of shape (2, E).

        PPI edges are stored once per pair and returned in both directions unless ``undirected=False``;
        internal (RNA -> protein) and ligand -> receptor edges keep their direction by default.
        """
        import torch

        src, dst, _ = self._edge_arrays(kind, undirected)
        return torch.from_numpy(np.stack([src, dst]))

    def edge_weight(self, kind: str, undirected: bool | None = None):
        """Weights of :meth:`edge_index` edges, ``torch.FloatTensor`` of shape (E,)."""
        import torch

        return torch.from_numpy(self._edge_arrays(kind, undirected)[2])
