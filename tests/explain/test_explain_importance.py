"""Importance: attention aggregation on hand-made tensors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from celltosg.errors import CellTOSGError
from celltosg.explain import (
    attention_importance,
    merge_edges,
    node_attention,
    select_layers,
)
from celltosg.model import LayerAttention

# edges 0->2, 1->2, 2->0, 2->1 over 3 nodes
EDGE_INDEX = torch.tensor([[0, 1, 2, 2], [2, 2, 0, 1]])


def test_select_layers_and_merge_edges():
    assert select_layers(["a", "b", "c"], [0, -1]) == ["a", "c"]
    with pytest.raises(CellTOSGError, match="attention layers"):
        select_layers(["a"], [3])
    with pytest.raises(CellTOSGError, match="gradient_x_input"):
        select_layers([])
    edges, values = merge_edges([np.array([[0, 2], [1, 0]]), np.array([[0], [1]])],
                                [np.array([1.0, 5.0]), np.array([3.0])], n_nodes=3)
    assert edges.tolist() == [[0, 2], [1, 0]]
    np.testing.assert_allclose(values, [2.0, 5.0])  # (0->1) is in both layers: mean of 1 and 3


def test_node_rules_by_hand():
    edges = torch.tensor([[0.3, 0.7, 1.0, 0.5]])
    # reference: (in + out) / 2 ; node0: in 1.0, out 0.3 ; node1: in 0.5, out 0.7 ; node2: in 1.0, out 1.5
    np.testing.assert_allclose(node_attention(edges, EDGE_INDEX, 3, "reference")[0], [0.65, 0.6, 1.25])
    # received: excess over 1 / in-degree (target 2: 1/2; targets 0 and 1: one edge each, 1/1)
    # node0 sends 0->2: 0.3 - 0.5 ; node1 sends 1->2: 0.7 - 0.5 ; node2 sends 2->0, 2->1: (1 - 1) + (0.5 - 1)
    np.testing.assert_allclose(node_attention(edges, EDGE_INDEX, 3, "received")[0], [-0.2, 0.2, -0.5], atol=1e-7)


class AttentionModel(torch.nn.Module):
    """Two attention layers over different edges; cell b's coefficients are scaled by x[b, 0].

    Layer 0 covers EDGE_INDEX with coefficients [0.3, 0.7, 1.0, 0.5]; layer 1 has the single edge
    0 -> 1 with coefficient 0.8. Node 3 is in no layer.
    """

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.graph = SimpleNamespace(n_rna=2, n_protein=2)

    def encode(self, x, return_attention=False):
        scale = x[:, :1]
        first = torch.stack([scale * torch.tensor([0.3, 0.7, 1.0, 0.5])] * 2, -1)  # H = 2, equal heads
        second = torch.stack([scale * torch.tensor([0.6]), scale * torch.tensor([1.0])], -1)  # heads mean 0.8
        layers = [LayerAttention("union", EDGE_INDEX, first), LayerAttention("union", torch.tensor([[0], [1]]), second)]
        node = torch.zeros(x.shape[0], 4, 1)
        return (node, layers) if return_attention else node


def test_attention_importance_averages_cells_and_layers():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 5.0]], dtype=np.float32)  # scale factors 1, 3, 2 -> mean 2
    first = attention_importance(AttentionModel(), X, layers=[0], rule="reference", batch_size=2)
    assert first.edge_index.tolist() == [[0, 1, 2, 2], [2, 2, 0, 1]]
    np.testing.assert_allclose(first.edge, 2 * np.array([0.3, 0.7, 1.0, 0.5]))
    np.testing.assert_allclose(first.node[:3], 2 * np.array([0.65, 0.6, 1.25]))
    assert np.isnan(first.node[3])
    both = attention_importance(AttentionModel(), X, rule="reference", batch_size=2)
    # layer 1 alone: node 0 (0 + 0.8) / 2, node 1 (0.8 + 0) / 2; node 2 only in layer 0
    np.testing.assert_allclose(both.node[:3], 2 * np.array([(0.65 + 0.4) / 2, (0.6 + 0.4) / 2, 1.25]))
    assert both.edge_index.tolist() == [[0, 0, 1, 2, 2], [1, 2, 2, 0, 1]]
    np.testing.assert_allclose(both.edge, 2 * np.array([0.8, 0.3, 0.7, 1.0, 0.5]), rtol=1e-6)
    assert both.method == "attention" and both.n_cells == 3
