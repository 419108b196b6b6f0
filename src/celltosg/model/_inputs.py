"""The graph-side inputs of CellTOSG-FM: topology and per-node frozen features, shared by all cells."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from celltosg.errors import MalformedInputError


@dataclass
class GraphInputs:
    """Topology and node features of one knowledge graph (RNA nodes ``0..n_rna-1``, then proteins).

    Attributes
    ----------
    n_rna, n_protein
        Node counts; N = n_rna + n_protein.
    internal_edge_index
        LongTensor (2, Ei), RNA -> protein.
    global_edge_index
        LongTensor (2, Eg), protein-protein (both directions) and ligand -> receptor.
    text_emb
        Float (N, T), frozen text embedding of every node.
    seq_feat
        Float (N, S), sequence features (meaningful where ``seq_mask``).
    seq_mask
        Bool (N,), True for nodes that have a sequence.
    global_is_ppi
        Bool (Eg,), True for PPI edges (the edges pretraining masks); None means every global edge.
    """

    n_rna: int
    n_protein: int
    internal_edge_index: torch.Tensor
    global_edge_index: torch.Tensor
    text_emb: torch.Tensor
    seq_feat: torch.Tensor
    seq_mask: torch.Tensor
    global_is_ppi: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.n_nodes
        for name in ("internal_edge_index", "global_edge_index"):
            edges = getattr(self, name)
            if edges.dim() != 2 or edges.shape[0] != 2:
                raise MalformedInputError(f"GraphInputs.{name} must have shape (2, E), got {tuple(edges.shape)}")
            if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= n):
                raise MalformedInputError(f"GraphInputs.{name} refers to nodes outside 0..{n - 1}")
        for name in ("text_emb", "seq_feat", "seq_mask"):
            if getattr(self, name).shape[0] != n:
                raise MalformedInputError(
                    f"GraphInputs.{name} has {getattr(self, name).shape[0]} rows but the graph has {n} nodes "
                    f"({self.n_rna} RNA + {self.n_protein} protein); compute it for the same graph")
        internal = self.internal_edge_index
        if internal.numel() and (bool((internal[0] >= self.n_rna).any()) or bool((internal[1] < self.n_rna).any())):
            raise MalformedInputError("internal edges must go from an RNA node (< n_rna) to a protein node")
        if self.global_is_ppi is not None and self.global_is_ppi.shape != (self.global_edge_index.shape[1],):
            raise MalformedInputError("GraphInputs.global_is_ppi must have one entry per global edge")

    def to_dict(self) -> dict:
        """The fields as a plain dict (as checkpoints store them)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> GraphInputs:
        """GraphInputs from :meth:`to_dict` output (a checkpoint's ``graph``)."""
        return cls(**values)

    @property
    def n_nodes(self) -> int:
        return self.n_rna + self.n_protein

    @property
    def ppi_mask(self) -> torch.Tensor:
        """Bool (Eg,): the global edges that are PPI edges."""
        if self.global_is_ppi is None:
            return torch.ones(self.global_edge_index.shape[1], dtype=torch.bool)
        return self.global_is_ppi


def graph_inputs(kg, text_emb, seq_feat, seq_mask) -> GraphInputs:
    """GraphInputs of a :class:`celltosg.kg.KnowledgeGraph` and its node embeddings.

    Parameters
    ----------
    kg
        The knowledge graph (the cohort's graph, so RNA nodes match the expression columns).
    text_emb
        Array or tensor (N, T), e.g. ``celltosg.encode.text_embeddings(kg)``.
    seq_feat, seq_mask
        (N, S) float and (N,) bool, e.g. ``celltosg.encode.sequence_features(kg)``.

    Global edges are PPI in both directions followed by ligand -> receptor edges.
    """
    ppi = kg.edge_index("ppi")
    ligand_receptor = kg.edge_index("ligand_receptor")
    is_ppi = torch.cat([torch.ones(ppi.shape[1], dtype=torch.bool),
                        torch.zeros(ligand_receptor.shape[1], dtype=torch.bool)])
    return GraphInputs(
        n_rna=int(kg.n_rna),
        n_protein=int(kg.n_protein),
        internal_edge_index=kg.edge_index("internal").long(),
        global_edge_index=torch.cat([ppi, ligand_receptor], 1).long(),
        text_emb=torch.as_tensor(np.asarray(text_emb), dtype=torch.float32),
        seq_feat=torch.as_tensor(np.asarray(seq_feat), dtype=torch.float32),
        seq_mask=torch.as_tensor(np.asarray(seq_mask), dtype=torch.bool),
        global_is_ppi=is_ppi,
    )
