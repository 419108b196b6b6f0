"""Each shared-topology layer against PyG's own conv (or a naive loop) applied one cell at a time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from celltosg.model import SharedGATConv, SharedGCNConv, SharedGINConv, SharedGraph, SourceAttentionConv

B, N, F_IN = 3, 12, 5
TOL = dict(atol=1e-5, rtol=1e-5)


def random_graph(seed: int, n: int = N, e: int = 40) -> torch.Tensor:
    """Random directed edges with a few duplicates and one self loop (PyG and ours must agree on them)."""
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    src = torch.cat([src, src[:3], torch.tensor([2])])
    dst = torch.cat([dst, dst[:3], torch.tensor([2])])
    return torch.stack([src, dst])


def run_both(ours: nn.Module, per_cell, edge_index: torch.Tensor, seed: int, **kwargs):
    """Outputs and gradients (input and parameters) of ours (batched) and of the per-cell reference."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, F_IN, generator=g, dtype=torch.float64, requires_grad=True)
    out = ours(x, edge_index, **kwargs)
    probe = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * probe).sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    ref = torch.stack([per_cell(x_ref[b], edge_index) for b in range(B)])
    (ref * probe).sum().backward()
    return out, ref, x.grad, x_ref.grad


def copy_params(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy ours into theirs by name (shapes reshaped where PyG stores them differently)."""
    mine = dict(ours.named_parameters())
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            param.copy_(mine[name].reshape(param.shape))


def assert_param_grads_equal(ours: nn.Module, theirs: nn.Module) -> None:
    mine = dict(ours.named_parameters())
    for name, param in theirs.named_parameters():
        torch.testing.assert_close(mine[name].grad.reshape(param.shape), param.grad, **TOL, msg=name)


@pytest.mark.parametrize("seed", [0, 1])
def test_gcn_matches_pyg(seed):
    from torch_geometric.nn import GCNConv

    torch.manual_seed(seed)
    ours = SharedGCNConv(F_IN, 4).double()
    nn.init.normal_(ours.bias)
    theirs = GCNConv(F_IN, 4).double()
    copy_params(ours, theirs)
    edge_index = random_graph(seed)
    out, ref, gx, gx_ref = run_both(ours, theirs, edge_index, seed)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(gx, gx_ref, **TOL)
    assert_param_grads_equal(ours, theirs)


@pytest.mark.parametrize("seed", [0, 1])
def test_gin_matches_pyg(seed):
    from torch_geometric.nn import GINConv

    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(F_IN, 6), nn.ReLU(), nn.Linear(6, 4))
    ours = SharedGINConv(mlp, eps=0.3, train_eps=True).double()
    theirs = GINConv(nn.Sequential(nn.Linear(F_IN, 6), nn.ReLU(), nn.Linear(6, 4)), eps=0.3,
                     train_eps=True).double()
    copy_params(ours, theirs)
    edge_index = random_graph(seed)
    out, ref, gx, gx_ref = run_both(ours, theirs, edge_index, seed)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(gx, gx_ref, **TOL)
    assert_param_grads_equal(ours, theirs)


@pytest.mark.parametrize(("seed", "concat"), [(0, True), (1, False)])
def test_exact_gat_matches_pyg(seed, concat):
    from torch_geometric.nn import GATConv

    torch.manual_seed(seed)
    ours = SharedGATConv(F_IN, 3, heads=2, concat=concat).double()
    nn.init.normal_(ours.bias)
    theirs = GATConv(F_IN, 3, heads=2, concat=concat).double()
    copy_params(ours, theirs)
    edge_index = random_graph(seed)
    out, ref, gx, gx_ref = run_both(ours, theirs, edge_index, seed)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(gx, gx_ref, **TOL)
    assert_param_grads_equal(ours, theirs)


def test_exact_gat_attention_matches_pyg():
    from torch_geometric.nn import GATConv

    torch.manual_seed(3)
    ours = SharedGATConv(F_IN, 3, heads=2).double()
    theirs = GATConv(F_IN, 3, heads=2).double()
    copy_params(ours, theirs)
    edge_index = random_graph(3)
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]
    x = torch.randn(B, N, F_IN, dtype=torch.float64)
    _, alpha = ours(x, no_loops, return_attention=True)
    assert alpha.shape == (B, no_loops.shape[1], 2)
    for b in range(B):
        _, (pyg_edges, pyg_alpha) = theirs(x[b], no_loops, return_attention_weights=True)
        # PyG returns the edges without self loops first, in input order, then the added loops
        assert torch.equal(pyg_edges[:, : no_loops.shape[1]], no_loops)
        torch.testing.assert_close(alpha[b], pyg_alpha[: no_loops.shape[1]], **TOL)


def naive_source_attention(layer: SourceAttentionConv, x: torch.Tensor, edge_index: torch.Tensor):
    """One cell, one target at a time: softmax of source scores over incoming edges plus a self loop."""
    h = layer.lin(x).view(x.shape[0], layer.heads, layer.out_channels)
    score = (h * layer.att[0, 0]).sum(-1)
    src, dst = edge_index
    rows = []
    for j in range(x.shape[0]):
        sources = torch.cat([src[(dst == j) & (src != j)], torch.tensor([j])])
        alpha = torch.softmax(score[sources], dim=0)  # (k, H)
        rows.append((alpha.unsqueeze(-1) * h[sources]).sum(0))
    out = torch.stack(rows)
    out = out.flatten(1) if layer.concat else out.mean(1)
    return out + layer.bias


@pytest.mark.parametrize(("seed", "concat"), [(0, True), (1, False), (2, True)])
def test_source_attention_matches_naive_loop(seed, concat):
    torch.manual_seed(seed)
    layer = SourceAttentionConv(F_IN, 3, heads=2, concat=concat).double()
    nn.init.normal_(layer.bias)
    nn.init.normal_(layer.att, std=2.0)
    edge_index = random_graph(seed)
    out, ref, gx, gx_ref = run_both(layer, lambda xc, ei: naive_source_attention(layer, xc, ei),
                                    edge_index, seed)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(gx, gx_ref, **TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_source_attention_over_a_graph_whose_first_nodes_only_send_matches_naive_loop(seed):
    """As in the model: nodes 0..3 (RNA) receive nothing, nodes 2.. send; the product runs over the block."""
    torch.manual_seed(seed)
    layer = SourceAttentionConv(F_IN, 3, heads=2).double()
    nn.init.normal_(layer.bias)
    nn.init.normal_(layer.att, std=2.0)
    edge_index = random_graph(seed)
    edge_index = torch.stack([edge_index[0].clamp_min(2), edge_index[1].clamp_min(4)])
    block = SharedGraph(edge_index, N).self_loop_block(torch.float64, torch.device("cpu"))
    assert (block.first_target, block.first_source) == (4, 2)
    out, ref, gx, gx_ref = run_both(layer, lambda xc, ei: naive_source_attention(layer, xc, ei),
                                    edge_index, seed)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(gx, gx_ref, **TOL)


def test_source_attention_without_mixing_edges_is_a_projection():
    layer = SourceAttentionConv(F_IN, 3, heads=2).double()
    x = torch.randn(B, N, F_IN, dtype=torch.float64)
    only_loops = torch.arange(N).repeat(2, 1)
    torch.testing.assert_close(layer(x, only_loops), layer.lin(x) + layer.bias, **TOL)


def test_source_attention_parameter_grads_match_naive_loop():
    torch.manual_seed(4)
    layer = SourceAttentionConv(F_IN, 3, heads=2).double()
    edge_index = random_graph(4)
    x = torch.randn(B, N, F_IN, dtype=torch.float64)
    layer(x, edge_index).pow(2).sum().backward()
    ours = {name: p.grad.clone() for name, p in layer.named_parameters()}
    layer.zero_grad()
    torch.stack([naive_source_attention(layer, x[b], edge_index) for b in range(B)]).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        torch.testing.assert_close(ours[name], p.grad, **TOL, msg=name)


def test_source_attention_coefficients_are_per_cell_softmax():
    torch.manual_seed(5)
    layer = SourceAttentionConv(F_IN, 3, heads=2).double()
    edge_index = random_graph(5)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    x = torch.randn(B, N, F_IN, dtype=torch.float64)
    _, alpha = layer(x, edge_index, return_attention=True)
    assert alpha.shape == (B, edge_index.shape[1], 2)
    h = layer.lin(x).view(B, N, 2, 3)
    score = (h * layer.att).sum(-1)
    for b in range(B):
        for e in range(edge_index.shape[1]):
            i, j = edge_index[:, e].tolist()
            sources = torch.cat([edge_index[0, edge_index[1] == j], torch.tensor([j])])
            expected = torch.exp(score[b, i]) / torch.exp(score[b, sources]).sum(0)
            torch.testing.assert_close(alpha[b, e], expected, **TOL)
    assert not torch.allclose(alpha[0], alpha[1])  # coefficients depend on each cell's values


def test_source_attention_is_stable_for_large_scores():
    layer = SourceAttentionConv(F_IN, 3, heads=1)
    nn.init.constant_(layer.att, 50.0)
    x = 30 * torch.randn(B, N, F_IN)
    out = layer(x, random_graph(0))
    assert torch.isfinite(out).all()


def test_shared_graph_reuses_adjacency_and_never_copies_edges_per_cell():
    graph = SharedGraph(random_graph(0), N)
    layer = SharedGCNConv(F_IN, 4)
    layer(torch.randn(B, N, F_IN), graph)
    matrix, _ = graph.adjacency("gcn", torch.float32, torch.device("cpu"))
    layer(torch.randn(2 * B, N, F_IN), graph)
    assert graph.adjacency("gcn", torch.float32, torch.device("cpu"))[0] is matrix
    assert matrix.values().numel() <= graph.n_edges + N
