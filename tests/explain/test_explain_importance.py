"""Importance: attention aggregation on hand-made tensors, gradient x input on a linear model, contrast."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from celltosg.errors import CellTOSGError
from celltosg.explain import (
    attention_importance,
    contrast,
    edge_attention,
    gradient_importance,
    importance,
    node_attention,
)

# edges 0->2, 1->2, 2->0, 2->1 over 3 nodes
EDGE_INDEX = torch.tensor([[0, 1, 2, 2], [2, 2, 0, 1]])


def test_edge_attention_means_heads_then_layers():
    layer0 = torch.tensor([[[0.2, 0.4], [0.8, 0.6], [1.0, 1.0], [1.0, 0.0]]])  # (B=1, E=4, H=2)
    layer1 = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.2, 0.2]]])
    np.testing.assert_allclose(edge_attention([layer0, layer1], layers=[0])[0], [0.3, 0.7, 1.0, 0.5])
    np.testing.assert_allclose(edge_attention([layer0, layer1], layers=[-1])[0], [0.0, 1.0, 0.5, 0.2])
    np.testing.assert_allclose(edge_attention([layer0, layer1])[0], [0.15, 0.85, 0.75, 0.35])
    with pytest.raises(CellTOSGError, match="attention layers"):
        edge_attention([layer0], layers=[3])


def test_node_rules_by_hand():
    edges = torch.tensor([[0.3, 0.7, 1.0, 0.5]])
    # reference: (in + out) / 2 ; node0: in 1.0, out 0.3 ; node1: in 0.5, out 0.7 ; node2: in 1.0, out 1.5
    np.testing.assert_allclose(node_attention(edges, EDGE_INDEX, 3, "reference")[0], [0.65, 0.6, 1.25])
    # received: excess over the per-target mean (target 2: mean 0.5; targets 0 and 1: one edge each)
    # node0 sends 0->2: 0.3 - 0.5 ; node1 sends 1->2: 0.7 - 0.5 ; node2 sends to 0 and 1: 0 + 0
    np.testing.assert_allclose(node_attention(edges, EDGE_INDEX, 3, "received")[0], [-0.2, 0.2, 0.0], atol=1e-7)


class AttentionModel(torch.nn.Module):
    """Returns two fixed attention layers per cell: cell b's coefficients are scaled by x[b, 0]."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.graph = SimpleNamespace(n_rna=2, n_protein=1, global_edge_index=EDGE_INDEX,
                                     internal_edge_index=torch.tensor([[0], [2]]))
        self.base = torch.tensor([0.3, 0.7, 1.0, 0.5])

    def encode(self, x, return_attention=False):
        coefficients = x[:, :1] * self.base  # (B, E)
        heads = torch.stack([coefficients, coefficients], -1)  # H = 2, equal heads
        node = torch.zeros(x.shape[0], 3, 1)
        return (node, [heads, 2 * heads]) if return_attention else node


def test_attention_importance_averages_cells():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 5.0]], dtype=np.float32)  # scale factors 1, 3, 2 -> mean 2
    imp = attention_importance(AttentionModel(), X, layers=[0], rule="reference", batch_size=2)
    np.testing.assert_allclose(imp.edge, 2 * np.array([0.3, 0.7, 1.0, 0.5]))
    np.testing.assert_allclose(imp.node, 2 * np.array([0.65, 0.6, 1.25]))
    both = attention_importance(AttentionModel(), X, rule="reference")  # layers 1x and 2x -> mean 1.5x
    np.testing.assert_allclose(both.edge, 3 * np.array([0.3, 0.7, 1.0, 0.5]))
    assert imp.method == "attention" and imp.n_cells == 3 and imp.edge_index.shape == (2, 4)


class LinearModel(torch.nn.Module):
    """logits = x @ W: gradient x input of class c is x * W[:, c]. No attention."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([[1.0, -1.0], [2.0, 0.5], [-3.0, 0.0]]))
        # RNA 0 -> protein 3, RNA 2 -> protein 4; RNA 1 has no protein
        self.graph = SimpleNamespace(n_rna=3, n_protein=2, internal_edge_index=torch.tensor([[0, 2], [3, 4]]))

    def encode(self, x, return_attention=False):
        node = torch.zeros(x.shape[0], 5, 1)
        return (node, []) if return_attention else node

    def forward(self, x):
        return {"logits": x @ self.weight}


def test_gradient_x_input_by_hand_and_auto_fallback():
    X = np.array([[1.0, 2.0, 1.0], [3.0, 0.0, 1.0]], dtype=np.float32)
    imp = gradient_importance(LinearModel(), X, class_index=0)
    rna = X.mean(0) * np.array([1.0, 2.0, -3.0])  # mean of x * W[:, 0]
    np.testing.assert_allclose(imp.node, [*rna, rna[0], rna[2]], rtol=1e-6)
    assert imp.edge is None and imp.method == "gradient_x_input"
    auto = importance(LinearModel(), X, class_index=1)
    np.testing.assert_allclose(auto.node[:3], X.mean(0) * np.array([-1.0, 0.5, 0.0]), rtol=1e-6)
    with pytest.raises(CellTOSGError, match="class_index"):
        importance(LinearModel(), X)


def test_contrast_ranks_by_magnitude():
    X = np.array([[1.0, 2.0, 1.0]], dtype=np.float32)
    Y = np.array([[1.0, 0.0, 3.0]], dtype=np.float32)
    model = LinearModel()
    diff = contrast(gradient_importance(model, X, 0), gradient_importance(model, Y, 0))
    np.testing.assert_allclose(diff.node[:3], [0.0, 4.0, 6.0])
    assert diff.contrast and np.argmax(diff.ranking()) == 2
