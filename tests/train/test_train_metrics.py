"""Metrics and class weights against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.train import class_weights, classification_metrics


def test_classification_metrics_by_hand():
    mapping = {"a": 0, "b": 1, "c": 2}
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    m = classification_metrics(y_true, y_pred, mapping)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # a: tp=1 fp=1 fn=1 -> f1 0.5; b: tp=2 fp=1 fn=1 -> 2/3; c: 1
    assert m["per_class_f1"] == pytest.approx({"a": 0.5, "b": 2 / 3, "c": 1.0})
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert m["labels"] == ["a", "b", "c"] and m["n"] == 6


def test_absent_class_is_reported_but_not_averaged():
    m = classification_metrics(np.array([0, 1]), np.array([0, 1]), {"a": 0, "b": 1, "z": 2})
    assert m["macro_f1"] == 1.0 and m["per_class_f1"]["z"] == 0.0
    assert m["confusion_matrix"][2] == [0, 0, 0]


def test_class_weights_inverse_frequency():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    # present classes: 0 (3 cells), 1 (1 cell); total 4 over 2 classes -> 4/(2*3), 4/(2*1); absent -> 0
    assert w == pytest.approx([2 / 3, 2.0, 0.0])


def test_selection_prefers_macro_f1_then_a_clearly_lower_loss():
    from celltosg.train._engine import LOSS_TOLERANCE, better

    best = {"macro_f1": 0.8, "loss": 0.5}
    assert better({"macro_f1": 0.81, "loss": 0.9}, best)
    assert not better({"macro_f1": 0.79, "loss": 0.1}, best)
    assert better({"macro_f1": 0.8, "loss": 0.5 - 10 * LOSS_TOLERANCE}, best)
    # a perfect validation score whose loss creeps down by 1e-6 an epoch is no improvement: training stops
    assert not better({"macro_f1": 1.0, "loss": 2e-6}, {"macro_f1": 1.0, "loss": 3e-6})
