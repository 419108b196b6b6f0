"""Building blocks around the shared-topology convolutions: a conv factory and a residual block."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from celltosg.errors import MalformedInputError
from celltosg.model._layers import (
    GraphLike,
    SharedGATConv,
    SharedGCNConv,
    SharedGINConv,
    SourceAttentionConv,
)
from celltosg.model._sparse import SharedGraph

ATTENTION_CONVS = ("attention", "gat")


class LayerAttention(NamedTuple):
    """Attention coefficients of one layer: ``alpha`` (B, E, H) over the edges ``edge_index`` (2, E)."""

    stage: str
    edge_index: torch.Tensor
    alpha: torch.Tensor


def make_conv(kind: str, in_channels: int, out_channels: int, heads: int = 1) -> nn.Module:
    """A shared-topology conv mapping (B, N, in) to (B, N, out).

    ``kind`` is ``attention`` (source-scored), ``gat`` (exact), ``gcn`` or ``gin`` (two-layer MLP);
    attention kinds concatenate ``heads`` heads of ``out_channels // heads`` channels.
    """
    if kind in ATTENTION_CONVS:
        conv = SourceAttentionConv if kind == "attention" else SharedGATConv
        return conv(in_channels, out_channels // heads, heads=heads)
    if kind == "gcn":
        return SharedGCNConv(in_channels, out_channels)
    if kind == "gin":
        mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.GELU(), nn.Linear(out_channels, out_channels))
        return SharedGINConv(mlp, train_eps=True)
    raise MalformedInputError(f"unknown conv kind {kind!r}; choose attention, gat, gcn or gin")


class ResidualConvBlock(nn.Module):
    """``h <- LayerNorm(h + dropout(GELU(conv(h, graph))))`` for (B, N, hidden) node states."""

    def __init__(self, kind: str, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.kind = kind
        self.conv = make_conv(kind, hidden, hidden, heads)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()  # p = 0 would still draw masks

    def forward(self, h: torch.Tensor, graph: GraphLike, return_attention: bool = False):
        """(B, N, hidden) -> (B, N, hidden), and alpha (B, E, H) or None when ``return_attention``."""
        out = self.forward_nodes(h.transpose(0, 1), SharedGraph.of(graph, h.shape[1]), return_attention)
        return (out[0].transpose(0, 1), out[1]) if return_attention else out.transpose(0, 1)

    def forward_nodes(self, h: torch.Tensor, graph: SharedGraph, return_attention: bool = False):
        """:meth:`forward` in node-first layout (N, B, hidden)."""
        alpha = None
        if return_attention and self.kind in ATTENTION_CONVS:
            out, alpha = self.conv.forward_nodes(h, graph, return_attention=True)
        else:
            out = self.conv.forward_nodes(h, graph)
        h = self.norm(h + self.dropout(nn.functional.gelu(out)))
        return (h, alpha) if return_attention else h
