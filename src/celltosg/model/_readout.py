"""Readout from node states to one cell embedding, with a parameter count independent of N."""

from __future__ import annotations

import torch
from torch import nn


class AttentionReadout(nn.Module):
    """Attention pooling plus mean and max pooling over nodes, projected to the cell embedding.

    ``w = softmax_n(v . h_n)`` per cell; ``cell = MLP([sum_n w_n h_n, mean_n h_n, max_n h_n])``.
    Parameters: about ``3 * hidden * out_dim``, whatever the number of nodes.
    """

    def __init__(self, hidden: int, out_dim: int):
        super().__init__()
        self.score = nn.Linear(hidden, 1)
        self.project = nn.Sequential(nn.Linear(3 * hidden, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def node_weights(self, h: torch.Tensor) -> torch.Tensor:
        """Pooling weights (B, N) of node states ``h`` (B, N, hidden); each row sums to 1."""
        return torch.softmax(self.score(h.transpose(0, 1)).squeeze(-1), dim=0).t()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` (B, N, hidden) -> cell embedding (B, out_dim)."""
        return self.forward_nodes(h.transpose(0, 1))

    def forward_nodes(self, h: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on node-first states (N, B, hidden)."""
        weights = torch.softmax(self.score(h).squeeze(-1), dim=0)  # (N, B)
        pooled = torch.einsum("nb,nbh->bh", weights, h)
        return self.project(torch.cat([pooled, h.mean(0), h.amax(0)], -1))
