"""The reference configuration of CellTOSG-FM, kept for comparison (accuracy, parameters, speed)."""

from __future__ import annotations

import torch
from torch import nn

from celltosg.errors import MalformedInputError
from celltosg.model._blocks import ResidualConvBlock
from celltosg.model._inputs import GraphInputs
from celltosg.model._sparse import SharedGraph


class ReferenceFM(nn.Module):
    """The reference's design on our shared-topology layers.

    Each node's text embedding and sequence features are pooled to ONE number each (their mean) and
    fused with the omic value into ``hidden`` (8) channels; one internal layer on RNA -> protein edges and
    ``layers`` global layers (GAT by default, one head) with residuals; a per-node scalar readout gives
    (B, N), then an MLP N -> 512 -> 256 -> 64 -> C whose first layer has N * 512 parameters.

    Parameters
    ----------
    graph
        :class:`GraphInputs`.
    n_classes
        Outputs C.
    """

    def __init__(self, graph: GraphInputs, n_classes: int, *, hidden: int = 8, layers: int = 2, conv: str = "gat",
                 dropout: float = 0.0):
        super().__init__()
        if n_classes < 1:
            raise MalformedInputError(f"ReferenceFM needs n_classes >= 1, got {n_classes}")
        self.graph = graph
        seq = torch.where(graph.seq_mask, graph.seq_feat.float().mean(1), torch.zeros(()))
        self.register_buffer("scalars", torch.stack([graph.text_emb.float().mean(1), seq], -1), persistent=False)
        self.internal_graph = SharedGraph(graph.internal_edge_index, graph.n_nodes)
        self.global_graph = SharedGraph(graph.global_edge_index, graph.n_nodes)
        self.fuse = nn.Linear(3, hidden)
        self.internal = ResidualConvBlock(conv, hidden, 1, dropout)
        self.global_layers = nn.ModuleList([ResidualConvBlock(conv, hidden, 1, dropout) for _ in range(layers)])
        self.node_readout = nn.Linear(hidden, 1)
        widths = [graph.n_nodes, 512, 256, 64]
        mlp: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            mlp += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*mlp)
        self.head = nn.Linear(64, n_classes)

    def encode(self, x_rna: torch.Tensor) -> torch.Tensor:
        """(B, n_rna) -> node embeddings (B, N, hidden)."""
        if x_rna.dim() != 2 or x_rna.shape[1] != self.graph.n_rna:
            raise MalformedInputError(f"x_rna must have shape (B, {self.graph.n_rna}), got {tuple(x_rna.shape)}")
        batch = x_rna.shape[0]
        omic = torch.cat([x_rna.float(), x_rna.new_zeros(batch, self.graph.n_protein, dtype=torch.float32)], 1)
        h = self.fuse(torch.cat([omic.unsqueeze(-1), self.scalars.expand(batch, -1, -1)], -1))
        h = self.internal(h, self.internal_graph)
        for layer in self.global_layers:
            h = layer(h, self.global_graph)
        return h

    def embed(self, x_rna: torch.Tensor) -> torch.Tensor:
        """Cell embeddings (B, 64): the MLP's last hidden layer."""
        return self.mlp(self.node_readout(self.encode(x_rna)).squeeze(-1))

    def forward(self, x_rna: torch.Tensor) -> dict:
        """dict(node (B, N, hidden), cell (B, 64), logits (B, C))."""
        node = self.encode(x_rna)
        cell = self.mlp(self.node_readout(node).squeeze(-1))
        return {"node": node, "cell": cell, "logits": self.head(cell)}
