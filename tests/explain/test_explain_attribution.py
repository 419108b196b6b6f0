"""Class-contrastive gradient attributions against closed forms on linear and quadratic models."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from celltosg.errors import CellTOSGError
from celltosg.explain import baseline_profile, contrast, contrastive_target, importance, rna_attribution

W = np.array([[1.0, -1.0, 0.5], [2.0, 0.5, 0.0], [-3.0, 0.0, 1.0]])  # (n_rna 3, classes 3)


class PolyModel(torch.nn.Module):
    """logits = (x ** power) @ W. RNA 0 -> protein 3, RNA 2 -> protein 4; RNA 1 has no protein."""

    def __init__(self, power: int = 1):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(W, dtype=torch.float32))
        self.power = power
        self.graph = SimpleNamespace(n_rna=3, n_protein=2, internal_edge_index=torch.tensor([[0, 2], [3, 4]]))

    def forward(self, x):
        return {"logits": (x**self.power) @ self.weight}


X = np.array([[1.0, 2.0, 1.0], [3.0, 0.5, 2.0]], dtype=np.float32)


def _w_target(c, k=None):
    """Weights of the explained scalar: W[:, c] - mean of the other columns, or W[:, c] - W[:, k]."""
    other = W[:, k] if k is not None else np.delete(W, c, axis=1).mean(1)
    return W[:, c] - other


def test_contrastive_target_by_hand():
    logits = torch.tensor([[1.0, 4.0, -2.0]])
    assert contrastive_target(logits, 0).item() == pytest.approx(1.0 - (4.0 - 2.0) / 2)
    assert contrastive_target(logits, 1, contrast_index=2).item() == pytest.approx(6.0)
    with pytest.raises(CellTOSGError, match="not an output"):
        contrastive_target(logits, 3)
    with pytest.raises(CellTOSGError, match="different --contrast"):
        contrastive_target(logits, 1, contrast_index=1)


def test_baselines():
    np.testing.assert_allclose(baseline_profile(X, "mean"), X.mean(0))
    assert not baseline_profile(X, "zeros").any()
    with pytest.raises(CellTOSGError, match="baseline"):
        baseline_profile(X, "median")
    with pytest.raises(CellTOSGError, match="one value per RNA node"):
        baseline_profile(X, np.zeros(4))


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_linear_model_closed_form(method):
    # for a linear target both methods give (x - b) * w, averaged over cells
    b = X.mean(0)
    for c, k in ((0, None), (2, 1)):
        got = rna_attribution(PolyModel(), X, c, method=method, baseline=b, contrast_index=k)
        np.testing.assert_allclose(got, (X - b).mean(0) * _w_target(c, k), rtol=1e-5, atol=1e-6)


def test_quadratic_model_separates_the_methods():
    # target = sum_i w_i x_i^2: integrated gradients = (x^2 - b^2) w exactly; gradient x input = 2 x (x - b) w
    b = np.array([0.5, 1.0, 0.0], dtype=np.float32)
    w = _w_target(1)
    ig = rna_attribution(PolyModel(2), X, 1, method="integrated_gradients", baseline=b, n_steps=16)
    np.testing.assert_allclose(ig, ((X**2 - b**2) * w).mean(0), rtol=1e-4, atol=1e-5)
    gxi = rna_attribution(PolyModel(2), X, 1, method="gradient_x_input", baseline=b)
    np.testing.assert_allclose(gxi, (2 * X * (X - b) * w).mean(0), rtol=1e-5, atol=1e-5)
    # completeness: the attributions of one cell sum to target(x) - target(b)
    one = rna_attribution(PolyModel(2), X[:1], 1, method="integrated_gradients", baseline=b, n_steps=16)
    assert one.sum() == pytest.approx(float(((X[0] ** 2 - b**2) * w).sum()), rel=1e-4)


def test_importance_maps_proteins_and_checks_arguments():
    imp = importance(PolyModel(), X, method="gradient_x_input", class_index=0)  # baseline None = zeros
    rna = X.mean(0) * _w_target(0)
    np.testing.assert_allclose(imp.node, [*rna, rna[0], rna[2]], rtol=1e-6)
    assert imp.edge is None and imp.method == "gradient_x_input" and not imp.contrast
    with pytest.raises(CellTOSGError, match="class_index"):
        importance(PolyModel(), X, method="integrated_gradients")
    with pytest.raises(CellTOSGError, match="unknown explanation method"):
        importance(PolyModel(), X, method="auto", class_index=0)


def test_contrast_ranks_by_magnitude():
    model = PolyModel()
    a = importance(model, X[:1], method="gradient_x_input", class_index=0)
    b = importance(model, X[1:], method="gradient_x_input", class_index=0)
    diff = contrast(a, b)
    np.testing.assert_allclose(diff.node, a.node - b.node)
    assert diff.contrast and np.argmax(diff.ranking()) == np.argmax(np.abs(a.node - b.node))
