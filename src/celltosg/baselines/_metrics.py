"""Classification metrics on integer labels (numpy only)."""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows with ``y_pred == y_true`` (both int (n,))."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    A class with no true and no predicted rows is left out (scikit-learn's ``f1_score(average="macro")``).
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if not len(y_true):
        return float("nan")
    size = int(max(y_true.max(), y_pred.max()) + 1) if n_classes is None else int(n_classes)
    true_count = np.bincount(y_true, minlength=size)
    pred_count = np.bincount(y_pred, minlength=size)
    hits = np.bincount(y_true[y_true == y_pred], minlength=size)
    present = (true_count + pred_count) > 0
    f1 = 2 * hits[present] / (true_count[present] + pred_count[present])
    return float(f1.mean())
