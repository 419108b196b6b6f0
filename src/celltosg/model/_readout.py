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


class PerNodeReadout(nn.Module):
    """Per-node projection flattened over the nodes, then an MLP: the readout that keeps gene identity.

    ``z[b, n] = W_r h[b, n] + c`` (``rank`` channels r, weights shared by all nodes);
    ``cell = Linear(D, D)(dropout(GELU(Linear(N r, D)(dropout(flatten_n z)))))``: the first dropout
    hides whole node channels (as input dropout hides genes), the strongest regulariser here. Node ``n``'s channels meet their
    own columns of the first MLP layer, so the readout knows which gene or protein each state belongs to.

    Parameters: ``hidden * r + r + (N r + 1) D + (D + 1) D``, i.e. ``N r D`` plus a part independent of
    N (N = 1.5k, r = 4, D = 64: 0.38M; the 40k-node human pack: 10M).

    Parameters
    ----------
    n_nodes
        N, the nodes read (all nodes of the graph, in node order).
    hidden, rank, out_dim
        Node state width H, channels per node r, cell embedding width D.
    dropout
        Dropout on the flattened node channels and before the last layer.
    """

    def __init__(self, n_nodes: int, hidden: int, rank: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.n_nodes, self.rank = n_nodes, rank
        self.project = nn.Linear(hidden, rank)
        self.drop = nn.Dropout(dropout)
        self.first = nn.Linear(n_nodes * rank, out_dim)
        self.rest = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` (B, N, hidden) -> cell embedding (B, out_dim)."""
        return self.forward_nodes(h.transpose(0, 1))

    def forward_nodes(self, h: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on node-first states (N, B, hidden)."""
        z = self.project(h)  # (N, B, r)
        flat = z.transpose(0, 1).reshape(z.shape[1], -1)  # (B, N*r), node-major
        return self.rest(self.first(self.drop(flat)))
