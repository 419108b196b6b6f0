"""Edge-masking pretraining: masked edges never reach message passing; the objective learns."""

from __future__ import annotations

import dataclasses

import torch
from tests.model.conftest import SEQ_DIM, TEXT_DIM

from celltosg.model import CellTOSGFM, EdgeMaskingObjective, FMConfig, edge_metrics


def make_model(graph, seed: int = 0, **kwargs) -> CellTOSGFM:
    torch.manual_seed(seed)
    cfg = FMConfig(hidden=8, heads=2, layers=2, text_dim=TEXT_DIM, seq_dim=SEQ_DIM, dropout=0.0, **kwargs)
    return CellTOSGFM(graph, cfg)


def without_edges(graph, drop: torch.Tensor):
    """The same graph with the global edges where ``drop`` is True deleted from the edge list itself."""
    return dataclasses.replace(graph, global_edge_index=graph.global_edge_index[:, ~drop],
                               global_is_ppi=graph.global_is_ppi[~drop])


def test_masked_edges_are_hidden_in_both_directions(tiny_graph):
    objective = EdgeMaskingObjective(tiny_graph, 8, mask_ratio=0.2, seed=1)
    positives, negatives, edge_mask = objective.sample()
    src, dst = tiny_graph.global_edge_index
    pairs = {frozenset(p) for p in positives.T.tolist()}
    hidden = {frozenset(e) for e in tiny_graph.global_edge_index[:, edge_mask].T.tolist()}
    visible = {frozenset(e) for e in tiny_graph.global_edge_index[:, ~edge_mask].T.tolist()}
    assert hidden == pairs and not (visible & pairs)
    assert int(edge_mask.sum()) >= 2 * len(pairs)
    all_edges = {frozenset(e) for e in tiny_graph.global_edge_index.T.tolist()}
    assert not {frozenset(p) for p in negatives.T.tolist()} & all_edges
    assert (negatives[0] != negatives[1]).all() and (negatives >= tiny_graph.n_rna).all()


def test_encoder_output_equals_the_graph_without_masked_edges(tiny_graph):
    x = torch.rand(3, tiny_graph.n_rna)
    for two_stage in (True, False):
        model = make_model(tiny_graph, two_stage=two_stage)
        objective = EdgeMaskingObjective(tiny_graph, 8, mask_ratio=0.3, seed=2)
        out = objective(model, x)
        reduced = make_model(without_edges(tiny_graph, out.edge_mask), two_stage=two_stage)
        reduced.load_state_dict(model.state_dict())
        torch.testing.assert_close(out.node, reduced.encode(x))
        assert not torch.allclose(out.node, model.encode(x))  # the masked edges did matter


def test_masked_edge_carries_no_gradient(tiny_graph):
    model = make_model(tiny_graph).eval()
    objective = EdgeMaskingObjective(tiny_graph, 8, mask_ratio=0.2, seed=3)
    positives, _, edge_mask = objective.sample()
    a, b = positives[:, 0].tolist()
    # cut every other path between a and b too: then b's state may depend on a only through the masked edge
    src, dst = tiny_graph.global_edge_index
    others = (src == a) | (dst == a)
    keep_graph = without_edges(tiny_graph, others & ~edge_mask)
    model_cut = make_model(keep_graph).eval()
    model_cut.load_state_dict(model.state_dict())
    mask_cut = edge_mask[~(others & ~edge_mask)]
    n_rna = tiny_graph.n_rna
    rna_of_a = int(tiny_graph.internal_edge_index[0, tiny_graph.internal_edge_index[1] == a][0])
    x = torch.rand(2, n_rna, requires_grad=True)
    probe = torch.randn(8)  # (a LayerNorm output summed over features would have no gradient at all)
    node = model_cut.encode(x, edge_mask=mask_cut)
    (node[:, b] * probe).sum().backward()
    assert x.grad[:, rna_of_a].abs().max() == 0
    x.grad = None
    (model_cut.encode(x)[:, b] * probe).sum().backward()  # unmasked, the same edge does carry gradient
    assert x.grad[:, rna_of_a].abs().max() > 0


def test_loss_has_a_weighted_degree_term_and_metrics(tiny_graph):
    model = make_model(tiny_graph)
    objective = EdgeMaskingObjective(tiny_graph, 8, mask_ratio=0.2, degree_weight=0.5, seed=4)
    out = objective(model, torch.rand(2, tiny_graph.n_rna))
    p = objective.n_masked
    assert out.logits.shape == (2, 2 * p) and out.labels[:, :p].eq(1).all() and out.labels[:, p:].eq(0).all()
    torch.testing.assert_close(out.loss, out.edge_loss + 0.5 * out.degree_loss)
    assert out.degree_loss > 0 and EdgeMaskingObjective(tiny_graph, 8).degree_weight > 0
    metrics = edge_metrics(out.logits, out.labels)
    assert 0.0 <= metrics["auc"] <= 1.0 and 0.0 <= metrics["ap"] <= 1.0


def test_same_seed_same_masks(tiny_graph):
    one = EdgeMaskingObjective(tiny_graph, 8, seed=5).sample()
    two = EdgeMaskingObjective(tiny_graph, 8, seed=5).sample()
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def test_pretraining_reduces_the_loss(tiny_graph):
    model = make_model(tiny_graph)
    objective = EdgeMaskingObjective(tiny_graph, 8, mask_ratio=0.3, seed=6)
    optimiser = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=1e-2)
    x = torch.rand(4, tiny_graph.n_rna)
    losses = []
    for _ in range(60):
        out = objective(model, x)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(float(out.loss.detach()))
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
