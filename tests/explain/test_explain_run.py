"""explain() end to end on the tiny pack with a model whose attention follows planted genes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from celltosg.errors import CellTOSGError, UnknownIdentifierError
from celltosg.explain import OUTPUT_FILES, explain
from celltosg.model import LayerAttention

PLANTED = [20, 21, 22, 23, 24]  # genes 20..24: their proteins sit next to each other on the PPI ring


class PlantedAttentionModel(torch.nn.Module):
    """Source-scored softmax attention over the PPI edges: a protein's score is its gene's value."""

    def __init__(self, kg):
        super().__init__()
        self.temperature = torch.nn.Parameter(torch.tensor(3.0))
        internal = kg.edge_index("internal")
        self.graph = SimpleNamespace(n_rna=kg.n_rna, n_protein=kg.n_protein, internal_edge_index=internal,
                                     global_edge_index=kg.edge_index("ppi"))

    def encode(self, x, return_attention=False):
        internal = self.graph.internal_edge_index
        n = self.graph.n_rna + self.graph.n_protein
        value = torch.zeros(x.shape[0], n)
        value[:, : self.graph.n_rna] = x
        value[:, internal[1]] = x[:, internal[0]]
        src, dst = self.graph.global_edge_index
        weight = torch.exp(self.temperature * value[:, src])
        alpha = weight / torch.zeros_like(value).index_add(1, dst, weight)[:, dst]
        node = value.unsqueeze(-1)
        layer = LayerAttention("global", self.graph.global_edge_index, alpha.unsqueeze(-1))
        return (node, [layer]) if return_attention else node

    def forward(self, x):
        return {"logits": torch.stack([-x[:, PLANTED].sum(1), x[:, PLANTED].sum(1)], 1)}


def _cohort(kg, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(40, kg.n_rna)).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    X[np.ix_(labels == 1, PLANTED)] += 2.0
    return X, labels, {"normal": 0, "disease": 1}


def test_explain_writes_every_output_and_finds_the_planted_module(tiny_kg, tmp_path):
    X, labels, mapping = _cohort(tiny_kg)
    model = PlantedAttentionModel(tiny_kg)
    result = explain(model, X, labels, mapping, tiny_kg, class_label="disease", top_k=5, out_dir=tmp_path / "out",
                     method="attention")  # class-contrastive: disease cells minus the other (normal) cells
    for name in OUTPUT_FILES:
        assert (tmp_path / "out" / name).is_file(), name
    p0 = tiny_kg.n_rna
    seeds = result.subgraph.nodes.query("role == 'seed'")["node_index"].tolist()
    assert set(seeds) == {p0 + g for g in PLANTED}
    assert set(result.subgraph.genes) == {f"GENE{g}" for g in PLANTED}
    graph = nx.read_graphml(tmp_path / "out" / "subgraph.graphml")
    assert graph.number_of_nodes() == len(result.subgraph.nodes)
    nodes = pd.read_csv(tmp_path / "out" / "nodes.csv")
    assert list(nodes.columns) == ["node_index", "node_id", "type", "symbol", "score", "rank", "role"]
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert len(scores) == tiny_kg.n_nodes and scores["rank"].iloc[0] == 1
    assert (scores["rank"] == 0).sum() == tiny_kg.n_rna  # RNA nodes carry no attention edges: unscored
    enrichment = pd.read_csv(tmp_path / "out" / "enrichment.csv")
    assert "KEGG" in set(enrichment["collection"])  # GENE20..29 form the tiny pack's KEGG term
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["method"] == "attention" and summary["n_cells"] == 20 and summary["background_size"] == 40
    assert summary["n_reference_cells"] == 20 and summary["n_nodes"] <= 5
    assert {g["symbol"] for g in summary["top_genes"][:5]} == {f"GENE{g}" for g in PLANTED}
    assert (tmp_path / "out" / "subgraph.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "out" / "subgraph.html").read_text()
    assert "cytoscape" in page and "http://" not in page.split("<script>")[0]


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_gradient_methods_find_the_planted_genes(tiny_kg, tmp_path, method):
    X, labels, mapping = _cohort(tiny_kg)
    model = PlantedAttentionModel(tiny_kg)  # logits +-sum of the planted genes
    result = explain(model, X, labels, mapping, tiny_kg, class_label="disease", top_k=8,
                     out_dir=tmp_path / method, method=method)
    planted = {f"GENE{g}" for g in PLANTED}
    assert not result.importance.contrast and result.summary["n_reference_cells"] == 0
    assert {g["symbol"] for g in result.summary["top_genes"][:5]} == planted
    assert set(result.subgraph.nodes.query("role == 'seed'")["symbol"]) <= planted
    # two classes: the class-contrastive default is the contrast with the other class
    against = explain(model, X, labels, mapping, tiny_kg, class_label="disease", contrast_label="normal", top_k=8,
                      out_dir=tmp_path / f"{method}_normal", method=method)
    np.testing.assert_allclose(against.importance.node, result.importance.node, rtol=1e-5, atol=1e-7)
    # mean baseline: a planted gene scores 2 (x - cohort mean) on average over the disease cells
    rows = labels == 1
    expected = 2 * (X[rows][:, PLANTED] - X[:, PLANTED].mean(0)).mean(0)
    np.testing.assert_allclose(result.importance.node[PLANTED], expected, rtol=1e-4)
    zeros = explain(model, X, labels, mapping, tiny_kg, class_label="disease", top_k=8, baseline="zeros",
                    out_dir=tmp_path / f"{method}_zeros", method=method)
    np.testing.assert_allclose(zeros.importance.node[PLANTED], 2 * X[rows][:, PLANTED].mean(0), rtol=1e-4)


def test_bad_requests_are_explained(tiny_kg, tmp_path):
    X, labels, mapping = _cohort(tiny_kg)
    model = PlantedAttentionModel(tiny_kg)
    with pytest.raises(UnknownIdentifierError, match="not one of the model's classes"):
        explain(model, X, labels, mapping, tiny_kg, class_label="flu", out_dir=tmp_path / "x")
    with pytest.raises(CellTOSGError, match="columns"):
        explain(model, X[:, :5], labels, mapping, tiny_kg, class_label="disease", out_dir=tmp_path / "x")
    with pytest.raises(CellTOSGError, match="unknown explanation method"):
        explain(model, X, labels, mapping, tiny_kg, class_label="disease", out_dir=tmp_path / "x", method="lime")
    with pytest.raises(CellTOSGError, match="explained class"):
        explain(model, X, labels, mapping, tiny_kg, class_label="disease", contrast_label="disease",
                out_dir=tmp_path / "x")
    with pytest.raises(CellTOSGError, match="baseline"):
        explain(model, X, labels, mapping, tiny_kg, class_label="disease", out_dir=tmp_path / "x", baseline="max")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("conv", "method"), [("attention", "attention"), ("gcn", "integrated_gradients")])
def test_explain_runs_on_the_real_model(tiny_kg, tmp_path, conv, method):
    from celltosg.model import CellTOSGFM, FMConfig, graph_inputs

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    graph = graph_inputs(tiny_kg, rng.normal(size=(tiny_kg.n_nodes, 8)).astype(np.float32),
                         rng.normal(size=(tiny_kg.n_nodes, 4)).astype(np.float32), np.ones(tiny_kg.n_nodes, bool))
    model = CellTOSGFM(graph, FMConfig(hidden=8, heads=2, text_dim=8, seq_dim=4, conv=conv, n_classes=2))
    X, labels, mapping = _cohort(tiny_kg)
    result = explain(model, X, labels, mapping, tiny_kg, class_label="disease", top_k=10, out_dir=tmp_path / conv,
                     method=method)
    assert result.importance.method == method
    assert 1 <= len(result.subgraph.core) <= 10
    if conv == "attention":  # the internal stage scores RNA nodes that have a protein; others are unscored
        has_protein = np.isin(np.arange(tiny_kg.n_rna), graph.internal_edge_index[0].numpy())
        np.testing.assert_array_equal(np.isfinite(result.importance.node[: tiny_kg.n_rna]), has_protein)
        assert np.ptp(result.importance.node[: tiny_kg.n_rna][has_protein]) > 0
