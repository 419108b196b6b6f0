"""CellTOSGFM: inputs from a KnowledgeGraph, shapes, per-cell independence, attention, readout size."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tests.model.conftest import SEQ_DIM, TEXT_DIM, random_features

from celltosg.errors import MalformedInputError
from celltosg.model import CellTOSGFM, FMConfig, GraphInputs, ReferenceFM, graph_inputs


def config(**kwargs) -> FMConfig:
    base = dict(hidden=8, heads=2, layers=2, text_dim=TEXT_DIM, seq_dim=SEQ_DIM, dropout=0.0, readout_dim=6)
    return FMConfig(**{**base, **kwargs})


def cells(graph: GraphInputs, batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, graph.n_rna, generator=torch.Generator().manual_seed(seed)) * 4


def test_graph_inputs_from_knowledge_graph(tiny_kg):
    graph = graph_inputs(tiny_kg, *random_features(tiny_kg))
    counts = tiny_kg.counts()
    assert (graph.n_rna, graph.n_protein) == (counts["n_rna"], counts["n_protein"])
    assert graph.internal_edge_index.shape == (2, counts["n_internal"])
    assert graph.global_edge_index.shape == (2, 2 * counts["n_ppi"] + counts["n_ligand_receptor"])
    assert int(graph.global_is_ppi.sum()) == 2 * counts["n_ppi"]
    assert (graph.internal_edge_index[0] < graph.n_rna).all() and (graph.internal_edge_index[1] >= graph.n_rna).all()
    ppi = graph.global_edge_index[:, graph.global_is_ppi]
    assert {tuple(e) for e in ppi.T.tolist()} == {tuple(e) for e in ppi.flip(0).T.tolist()}  # symmetric
    assert int(graph.seq_mask.sum()) == len(tiny_kg.sequences)


def test_graph_inputs_rejects_wrong_feature_rows(tiny_kg):
    text, seq, mask = random_features(tiny_kg)
    with pytest.raises(MalformedInputError, match="text_emb"):
        graph_inputs(tiny_kg, text[:-1], seq, mask)


@pytest.mark.parametrize("conv", ["attention", "gat", "gcn", "gin"])
@pytest.mark.parametrize("two_stage", [True, False])
def test_shapes_and_cells_are_independent(tiny_graph, conv, two_stage):
    torch.manual_seed(0)
    model = CellTOSGFM(tiny_graph, config(conv=conv, two_stage=two_stage, n_classes=5)).eval()
    x = cells(tiny_graph)
    out = model(x)
    assert out["node"].shape == (3, tiny_graph.n_nodes, 8)
    assert out["cell"].shape == (3, 6) and out["logits"].shape == (3, 5)
    one_by_one = torch.cat([model(x[b : b + 1])["logits"] for b in range(3)])
    torch.testing.assert_close(out["logits"], one_by_one, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.embed(x), out["cell"])


def test_attention_is_returned_per_layer_and_depends_on_the_cell(tiny_graph):
    torch.manual_seed(0)
    model = CellTOSGFM(tiny_graph, config()).eval()
    node, attention = model.encode(cells(tiny_graph), return_attention=True)
    assert [a.stage for a in attention] == ["internal", "global", "global"]
    internal = attention[0]
    assert torch.equal(internal.edge_index, tiny_graph.internal_edge_index)
    assert internal.alpha.shape == (3, tiny_graph.internal_edge_index.shape[1], 2)
    glob = attention[1]
    assert glob.alpha.shape == (3, tiny_graph.global_edge_index.shape[1], 2)
    assert ((glob.alpha > 0) & (glob.alpha < 1)).all()
    incoming = torch.zeros(3, tiny_graph.n_nodes, 2).index_add_(1, glob.edge_index[1], glob.alpha)
    assert (incoming < 1).all()  # the rest of each target's mass sits on its self loop
    assert not torch.allclose(glob.alpha[0], glob.alpha[1])
    assert CellTOSGFM(tiny_graph, config(conv="gcn")).encode(cells(tiny_graph), return_attention=True)[1] == []


def test_protein_nodes_carry_no_omic_value(tiny_graph):
    model = CellTOSGFM(tiny_graph, config()).eval()
    fused = model.fusion(cells(tiny_graph), tiny_graph.n_protein, model.text_emb, model.seq_feat, model.seq_mask)
    proteins = fused[:, tiny_graph.n_rna :]
    torch.testing.assert_close(proteins[0], proteins[1])  # no per-cell input reaches a protein before messages
    assert not torch.allclose(fused[0, : tiny_graph.n_rna], fused[1, : tiny_graph.n_rna])


def test_text_projection_runs_once_per_batch_on_node_rows(tiny_graph):
    model = CellTOSGFM(tiny_graph, config()).eval()
    shapes = []
    model.fusion.text.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    model(cells(tiny_graph, batch=4))
    assert shapes == [(tiny_graph.n_nodes, TEXT_DIM)]


def test_pooled_readout_parameters_do_not_grow_with_nodes(tiny_kg):
    small = graph_inputs(tiny_kg.subgraph([f"GENE{i}" for i in range(12)]),
                         *random_features(tiny_kg.subgraph([f"GENE{i}" for i in range(12)])))
    large = graph_inputs(tiny_kg, *random_features(tiny_kg))
    count = lambda g: sum(p.numel() for p in CellTOSGFM(g, config(n_classes=3, readout="pool", skip=False)).parameters())  # noqa: E731
    assert small.n_nodes < large.n_nodes
    assert count(small) == count(large)


def test_per_node_readout_parameter_count_is_the_documented_function_of_n(tiny_graph):
    hidden, rank, width = 8, 3, 6
    model = CellTOSGFM(tiny_graph, config(readout_rank=rank, n_classes=4))
    n = tiny_graph.n_nodes
    expected = hidden * rank + rank + (n * rank + 1) * width + (width + 1) * width
    assert sum(p.numel() for p in model.readout.parameters()) == expected
    assert sum(p.numel() for p in model.skip.parameters()) == (tiny_graph.n_rna + 1) * 4


def test_per_node_readout_matches_a_naive_loop():
    """cell = rest(sum_n sum_r W1[:, n*r + k] * (W_r h_n + c)[k] + b1), written as explicit loops."""
    from celltosg.model import PerNodeReadout

    torch.manual_seed(0)
    n, batch, hidden, rank, width = 5, 3, 4, 2, 6
    readout = PerNodeReadout(n, hidden, rank, width).eval()
    h = torch.randn(batch, n, hidden)
    expected = torch.zeros(batch, width)
    for b in range(batch):
        first = readout.first.bias.clone()
        for node in range(n):
            z = readout.project.weight @ h[b, node] + readout.project.bias
            for k in range(rank):
                first = first + readout.first.weight[:, node * rank + k] * z[k]
        expected[b] = readout.rest(first.unsqueeze(0))[0]
    torch.testing.assert_close(readout(h), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(readout.forward_nodes(h.transpose(0, 1).contiguous()), expected, atol=1e-5, rtol=1e-5)


def test_logits_are_the_graph_path_plus_the_skip_path(tiny_graph):
    torch.manual_seed(0)
    model = CellTOSGFM(tiny_graph, config(n_classes=3)).eval()
    out = model(cells(tiny_graph))
    torch.testing.assert_close(out["logits"], out["graph_logits"] + out["skip_logits"])
    x = (cells(tiny_graph) - model.input_mean) / model.input_scale
    torch.testing.assert_close(out["skip_logits"], x @ model.skip.weight.T + model.skip.bias)
    plain = CellTOSGFM(tiny_graph, config(n_classes=3, skip=False)).eval()
    assert plain.skip is None
    assert torch.equal(plain(cells(tiny_graph))["skip_logits"], torch.zeros(3, 3))


@pytest.mark.parametrize("readout", ["per_node", "pool"])
def test_the_graph_changes_the_prediction(tiny_graph, readout):
    """Hiding the global edges changes the graph path's logits: the read nodes are reached by messages."""
    torch.manual_seed(0)
    model = CellTOSGFM(tiny_graph, config(n_classes=3, readout=readout)).eval()
    x = cells(tiny_graph)
    hidden = torch.ones(tiny_graph.global_edge_index.shape[1], dtype=torch.bool)
    assert not torch.allclose(model(x)["graph_logits"], model(x, edge_mask=hidden)["graph_logits"], atol=1e-5)


def test_reverse_internal_edges_update_rna_nodes(tiny_graph):
    torch.manual_seed(0)
    x = cells(tiny_graph)
    hidden = torch.ones(tiny_graph.global_edge_index.shape[1], dtype=torch.bool)
    n_rna = tiny_graph.n_rna
    forward_only = CellTOSGFM(tiny_graph, config()).eval()
    torch.testing.assert_close(forward_only.encode(x)[:, :n_rna], forward_only.encode(x, edge_mask=hidden)[:, :n_rna])
    both_ways = CellTOSGFM(tiny_graph, config(reverse_internal=True)).eval()
    assert not torch.allclose(both_ways.encode(x)[:, :n_rna], both_ways.encode(x, edge_mask=hidden)[:, :n_rna])


def test_input_standardisation_is_applied_and_clipped(tiny_graph):
    model = CellTOSGFM(tiny_graph, config(clip=2.0)).eval()
    mean, scale = torch.full((tiny_graph.n_rna,), 1.0), torch.full((tiny_graph.n_rna,), 0.5)
    model.set_input_scaling(mean, scale)
    x = torch.tensor([[0.0, 1.5, 9.0] + [1.0] * (tiny_graph.n_rna - 3)])
    assert model.scale_input(x)[0, :3].tolist() == [-2.0, 1.0, 2.0]
    assert "input_mean" in model.state_dict() and "input_scale" in model.state_dict()
    off = CellTOSGFM(tiny_graph, config(standardize=False))
    off.set_input_scaling(mean, scale)
    assert torch.equal(off.scale_input(x), x)
    with pytest.raises(MalformedInputError, match="positive scale"):
        model.set_input_scaling(mean, torch.zeros(tiny_graph.n_rna))


def test_modalities_can_be_switched_off(tiny_graph):
    model = CellTOSGFM(tiny_graph, config(use_text=False, use_seq=False, fusion="sum")).eval()
    assert model.fusion.text is None and model.fusion.seq is None
    assert model(cells(tiny_graph))["cell"].shape == (3, 6)


def test_wrong_input_width_is_a_clear_error(tiny_graph):
    model = CellTOSGFM(tiny_graph, config())
    with pytest.raises(MalformedInputError, match="one column per RNA node"):
        model(torch.zeros(2, tiny_graph.n_rna + 1))


def test_config_validation_and_round_trip():
    with pytest.raises(MalformedInputError, match="conv"):
        FMConfig(conv="transformer")
    with pytest.raises(MalformedInputError, match="multiple of heads"):
        FMConfig(hidden=10, heads=4)
    cfg = config(conv="gin", n_classes=4)
    assert FMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(MalformedInputError, match="unknown FMConfig keys"):
        FMConfig.from_dict({**dataclasses.asdict(cfg), "bogus": 1})


def test_set_head_replaces_the_task_head(tiny_graph):
    model = CellTOSGFM(tiny_graph, config())
    assert "logits" not in model(cells(tiny_graph))
    model.set_head(7)
    assert model(cells(tiny_graph))["logits"].shape == (3, 7)


def test_reference_configuration_has_an_n_wide_readout(tiny_graph):
    model = ReferenceFM(tiny_graph, n_classes=4)
    out = model(cells(tiny_graph))
    assert out["node"].shape == (3, tiny_graph.n_nodes, 8)
    assert out["logits"].shape == (3, 4) and model.embed(cells(tiny_graph)).shape == (3, 64)
    assert model.mlp[0].weight.shape == (512, tiny_graph.n_nodes)
    torch.testing.assert_close(model.scalars[:, 0], tiny_graph.text_emb.mean(1))  # one number per text embedding


def test_value_embedding_knows_which_gene_changed(tiny_graph):
    """Mean-pooled fused states differ when the same values sit on different genes (text-conditioned)."""
    model = CellTOSGFM(tiny_graph, config(fusion="sum", use_seq=False)).eval()
    x = torch.zeros(2, tiny_graph.n_rna)
    x[0, 3], x[1, 7] = 5.0, 5.0  # same value, different gene
    fused = model.fusion(x, tiny_graph.n_protein, model.text_emb, model.seq_feat, model.seq_mask)
    assert not torch.allclose(fused.mean(1)[0], fused.mean(1)[1], atol=1e-4)
