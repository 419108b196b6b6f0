"""Shared-topology graph convolutions: every layer takes ``x`` (B, N, F) and one graph for all cells.

The graph is a :class:`SharedGraph` (adjacencies cached across calls) or a raw ``edge_index`` (2, E).
Each layer also has ``forward_nodes`` taking node-first ``(N, B, F)`` states, the layout the model keeps
internally: there the (N, B*F) matrix of the sparse product is a view, not a copy.
Parameter names follow PyTorch Geometric's ``GCNConv``, ``GINConv`` and ``GATConv`` so weights can be
copied between them (the equivalence tests do).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from celltosg.model._sparse import SharedGraph

GraphLike = SharedGraph | torch.Tensor


class _NodeFirst(nn.Module):
    """``forward(x (B, N, F))`` as a transposed call of ``forward_nodes(x (N, B, F))``."""

    def forward(self, x: torch.Tensor, graph: GraphLike, return_attention: bool = False):
        """``x`` (B, N, F) -> (B, N, F_out) [and alpha (B, E, H) for attention layers]."""
        out = self.forward_nodes(x.transpose(0, 1), SharedGraph.of(graph, x.shape[1]), return_attention)
        if return_attention:
            return out[0].transpose(0, 1), out[1]
        return out.transpose(0, 1)


class SharedGCNConv(_NodeFirst):
    """GCN layer: ``out = D^-1/2 (A + I) D^-1/2 (x W^T) + b``, one sparse product with B*F columns.

    Parameters
    ----------
    in_channels, out_channels
        Feature sizes F_in, F_out.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.lin.weight)

    def forward_nodes(self, x: torch.Tensor, graph: SharedGraph, return_attention: bool = False) -> torch.Tensor:
        """``x`` (N, B, F_in) -> (N, B, F_out)."""
        out = graph.propagate_nodes(self.lin(x), "gcn")
        return out + self.bias if self.bias is not None else out


class SharedGINConv(_NodeFirst):
    """GIN layer: ``out_j = mlp((1 + eps) x_j + sum_{i -> j} x_i)``.

    Parameters
    ----------
    mlp
        Module applied to the last dimension of (B, N, F).
    eps
        Initial epsilon; learned when ``train_eps``.
    """

    def __init__(self, mlp: nn.Module, eps: float = 0.0, train_eps: bool = False):
        super().__init__()
        self.nn = mlp
        eps_tensor = torch.tensor([float(eps)])
        if train_eps:
            self.eps = nn.Parameter(eps_tensor)
        else:
            self.register_buffer("eps", eps_tensor)

    def forward_nodes(self, x: torch.Tensor, graph: SharedGraph, return_attention: bool = False) -> torch.Tensor:
        """``x`` (N, B, F) -> (N, B, F_out of the mlp)."""
        return self.nn((1 + self.eps) * x + graph.propagate_nodes(x, "sum"))


class _AttentionBase(_NodeFirst):
    """Linear projection to ``heads`` x ``out_channels`` and the concat/mean head merge with bias."""

    def __init__(self, in_channels: int, out_channels: int, heads: int, concat: bool, bias: bool):
        super().__init__()
        self.heads, self.out_channels, self.concat = heads, out_channels, concat
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        width = heads * out_channels if concat else out_channels
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None
        nn.init.xavier_uniform_(self.lin.weight)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, F) -> (N, B, H, C)."""
        return self.lin(x).unflatten(-1, (self.heads, self.out_channels))

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        """(N, B, H, C) -> (N, B, H*C) or (N, B, C), plus bias."""
        out = out.flatten(2) if self.concat else out.mean(2)
        return out + self.bias if self.bias is not None else out


class _SourceAttention(torch.autograd.Function):
    """Fused source-scored attention over node-first source states ``h`` (Ns, B, H, C) with a hand-written
    backward; ``A`` (Nt, Ns) sums sources into targets, so ``out`` is (Nt, B, H, C).

    Forward: ``w = exp(s - max)``, ``s = h . att``; ``[P, D] = A @ [w h, w]``; ``out = P / D``.
    Backward: ``[gP, gD] = A^T @ [G / D, -(G . out) / D]``; ``dh = w gP + (w (gP . h + gD)) att``;
    ``datt = sum (w (gP . h + gD)) h``. Only ``h``, ``w``, ``D`` and ``out`` are kept for backward.
    """

    @staticmethod
    def forward(ctx, h, att, matrix, matrix_t):
        n, batch, heads, channels = h.shape
        score = (h * att).sum(-1)
        weight = torch.exp(score - score.amax(0, keepdim=True))
        payload = h.new_empty(n, batch, heads, channels + 1)  # [w h, w] written in place, no concatenation
        torch.mul(h, weight.unsqueeze(-1), out=payload[..., :-1])
        payload[..., -1] = weight
        summed = torch.sparse.mm(matrix, payload.view(n, -1)).view(matrix.shape[0], batch, heads, channels + 1)
        denominator = summed[..., -1].clamp_min(torch.finfo(h.dtype).tiny)
        out = summed[..., :-1] / denominator.unsqueeze(-1)
        ctx.matrix_t = matrix_t
        ctx.save_for_backward(h, att, weight, denominator, out)
        ctx.mark_non_differentiable(weight, denominator)
        return out, weight, denominator

    @staticmethod
    def backward(ctx, grad, _grad_weight, _grad_denominator):
        h, att, weight, denominator, out = ctx.saved_tensors
        inv = denominator.reciprocal().unsqueeze(-1)
        upstream = grad.new_empty(*grad.shape[:-1], grad.shape[-1] + 1)
        torch.mul(grad, inv, out=upstream[..., :-1])
        upstream[..., -1] = -(grad * out).sum(-1) * inv.squeeze(-1)
        back = torch.sparse.mm(ctx.matrix_t, upstream.view(upstream.shape[0], -1)).view(*h.shape[:-1], -1)
        grad_p, grad_d = back[..., :-1], back[..., -1]
        grad_score = weight * ((grad_p * h).sum(-1) + grad_d)
        grad_h = grad_p * weight.unsqueeze(-1) + grad_score.unsqueeze(-1) * att
        # (h * g).sum over nodes and cells: an einsum here permutes h into a strided copy (slow on CPU)
        grad_att = (h * grad_score.unsqueeze(-1)).sum((0, 1))
        return grad_h, grad_att, None, None


class SourceAttentionConv(_AttentionBase):
    """Multi-head attention scored by the source node, computed as one sparse product per layer.

    ``alpha_ij = exp(s_i) / sum_{k in N(j)} exp(s_k)`` with ``s_i = a_h . h_i`` per cell ``b`` and head
    ``h`` (``h_i = W x_i``), over incoming edges plus one self loop per node; ``out_j = sum_i alpha_ij h_i``.
    Because the score depends on the source only, numerator and denominator are ``A @ [w * h, w]`` with
    ``w = exp(s - max)``: a single sparse product over an (N, B*H*(C+1)) matrix forward and one backward,
    no per-edge per-cell tensor. Coefficients still differ per cell and per edge (they depend on each
    cell's values).

    Stability: the shift is the maximum score per cell and head over all nodes (exact, since it cancels).
    Attention dropout is not offered: it would need a per-edge per-cell tensor.

    Nodes whose only in-edge is their self loop attend to themselves alone (``out = h``): the product runs
    over :meth:`SharedGraph.self_loop_block` only (in the model: the protein half of the nodes).

    Parameters
    ----------
    in_channels, out_channels
        Input width F and per-head width C.
    heads
        Number of heads H; ``concat`` gives (B, N, H*C), else the mean over heads (B, N, C).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, heads, concat, bias)
        self.att = nn.Parameter(torch.empty(1, 1, heads, out_channels))
        nn.init.uniform_(self.att, -1 / math.sqrt(out_channels), 1 / math.sqrt(out_channels))

    def forward_nodes(self, x: torch.Tensor, graph: SharedGraph, return_attention: bool = False):
        """``x`` (N, B, F) -> (N, B, H*C) [and alpha (B, E, H) over the graph's given edges]."""
        h = self._project(x)
        att = self.att.view(self.heads, self.out_channels)
        if return_attention:
            matrix, matrix_t = graph.adjacency("sum_self_loops", x.dtype, x.device)
            out, weight, denominator = _SourceAttention.apply(h, att, matrix, matrix_t)
            src, dst = graph.edge_index.to(x.device)
            return self._merge(out), (weight[src] / denominator[dst]).transpose(0, 1)
        block = graph.self_loop_block(x.dtype, x.device)
        if block.first_target == graph.n_nodes:
            return self._merge(h)
        sources = h[block.first_source:] if block.first_source else h  # a slice's backward costs a full copy
        mixed = _SourceAttention.apply(sources, att, block.matrix, block.matrix_t)[0]
        return self._merge(torch.cat([h[:block.first_target], mixed]) if block.first_target else mixed)


class SharedGATConv(_AttentionBase):
    """Exact GAT (Velickovic et al.) over the shared edge list, for comparison with the source-scored form.

    ``e_ij = LeakyReLU(a_src . h_i + a_dst . h_j)``, softmax over incoming edges plus one self loop per
    node. The work and memory are per edge per cell (E x B x H x C), as in PyG's ``GATConv``.
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, bias: bool = True):
        super().__init__(in_channels, out_channels, heads, concat, bias)
        self.negative_slope = negative_slope
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def _logits(self, a_src, a_dst, src, dst):
        return nn.functional.leaky_relu(a_src[src] + a_dst[dst], self.negative_slope)

    def forward_nodes(self, x: torch.Tensor, graph: SharedGraph, return_attention: bool = False):
        """``x`` (N, B, F) -> (N, B, H*C) [and alpha (B, E, H) over the graph's given edges]."""
        h = self._project(x)  # (N, B, H, C)
        a_src, a_dst = (h * self.att_src).sum(-1), (h * self.att_dst).sum(-1)  # (N, B, H)
        src, dst = graph.edges_with_self_loops(x.device)
        logits = self._logits(a_src, a_dst, src, dst)  # (E', B, H)
        index = dst.view(-1, 1, 1).expand_as(logits)
        shift = torch.full_like(a_dst, -torch.inf).scatter_reduce(0, index, logits.detach(), "amax")
        exp = torch.exp(logits - shift[dst])
        denominator = torch.zeros_like(a_dst).index_add(0, dst, exp)
        alpha = exp / denominator[dst]
        out = self._merge(torch.zeros_like(h).index_add(0, dst, h[src] * alpha.unsqueeze(-1)))
        if not return_attention:
            return out
        given_src, given_dst = graph.edge_index.to(x.device)
        given = torch.exp(self._logits(a_src, a_dst, given_src, given_dst) - shift[given_dst])
        return out, (given / denominator[given_dst]).transpose(0, 1)
