"""The torch modules of the baselines, at module level so that they pickle (DDP, copies between processes)."""

from __future__ import annotations

import torch
from torch import nn

from celltosg.model import SharedGATConv, SharedGCNConv, SharedGINConv, SharedGraph


def _conv(kind: str, n_in: int, n_out: int, heads: int) -> nn.Module:
    if kind == "gcn":
        return SharedGCNConv(n_in, n_out)
    if kind == "gin":
        return SharedGINConv(nn.Linear(n_in, n_out), train_eps=True)
    return SharedGATConv(n_in, n_out // heads, heads=heads)


def power_mean(x: torch.Tensor, p: torch.Tensor, *, dim: int, low: float = 1e-6, high: float = 100.0) -> torch.Tensor:
    """``mean(clamp(x)^p)^(1/p)`` over ``dim`` (PyG's ``PowerMeanAggregation``; the floor
    ``low`` > 0 keeps the gradient in ``p`` finite where every value is clamped)."""
    out = x.clamp(low, high).pow(p).mean(dim)
    return out.clamp(low, high).pow(1.0 / p)


class GraphBaseline(nn.Module):
    """The reference's GCN / GAT / GIN classifier on a shared graph: x_rna (B, n_rna) -> logits (B, C).

    Parameters
    ----------
    kind
        ``gcn``, ``gat`` or ``gin``; one convolution serves the internal and the union stage.
    n_rna, n_nodes
        RNA nodes (the input columns) and all nodes N.
    internal, union
        LongTensor (2, E) edge lists: RNA -> protein, and every edge.
    hidden, heads, n_classes
        Node width, attention heads (gat) and classes C.
    """

    def __init__(self, kind: str, n_rna: int, n_nodes: int, internal: torch.Tensor, union: torch.Tensor,
                 hidden: int, heads: int, n_classes: int) -> None:
        super().__init__()
        self.n_rna, self.n_nodes = n_rna, n_nodes
        self.internal = SharedGraph(internal, n_nodes)
        self.union = SharedGraph(union, n_nodes)
        self.conv_first = _conv(kind, 2, hidden, heads)
        self.conv_last = _conv(kind, hidden, hidden, heads)
        self.internal_transformation = nn.Linear(hidden, hidden)
        self.z_norm, self.x_norm_first, self.x_norm_last = (nn.BatchNorm1d(hidden) for _ in range(3))
        self.act = nn.LeakyReLU(0.1)
        self.p = nn.Parameter(torch.ones(1))  # learnable power of the readout, as PyG's learn=True
        self.head = nn.Linear(hidden, n_classes)
        is_rna = torch.zeros(n_nodes)
        is_rna[:n_rna] = 1.0
        self.register_buffer("is_rna", is_rna)

    @staticmethod
    def _norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return norm(x.reshape(-1, x.shape[-1])).view(x.shape)

    def forward(self, x_rna: torch.Tensor) -> torch.Tensor:
        batch = x_rna.shape[0]
        values = torch.zeros(batch, self.n_nodes, device=x_rna.device, dtype=x_rna.dtype)
        values[:, :self.n_rna] = x_rna
        x = torch.stack([values, self.is_rna.expand(batch, -1)], -1)  # (B, N, 2)
        z = self._norm(self.z_norm, self.internal_transformation(self.conv_first(x, self.internal)))
        x = self.act(self._norm(self.x_norm_first, self.conv_first(x, self.union) + z))
        x = self.act(self._norm(self.x_norm_last, self.conv_last(x, self.union)))
        return self.head(power_mean(x, self.p, dim=1))  # power mean over the N nodes: (B, H)
