"""Classification metrics on integer labels: accuracy, macro-F1 and the JSON-ready report of a test split."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows with ``y_pred == y_true`` (both int (n,)); NaN without rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``; NaN without rows.

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
    return float((2 * hits[present] / (true_count[present] + pred_count[present])).mean())


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_mapping: Mapping[str, int]) -> dict:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred
        int (n,) class indices.
    label_mapping
        label name -> class index; every class is reported, also those absent from ``y_true``.

    Returns
    -------
    dict with ``accuracy``, ``macro_f1`` (over the classes present in ``y_true`` or ``y_pred``),
    ``per_class_f1`` {label: f1}, ``confusion_matrix`` (C, C) nested lists (rows = true class),
    ``labels`` (class names in index order) and ``n``.
    """
    from sklearn.metrics import confusion_matrix, f1_score

    names = [name for name, _ in sorted(label_mapping.items(), key=lambda item: item[1])]
    classes = np.arange(len(names))
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    per_class = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred) if len(y_true) else 0.0,
        "macro_f1": macro_f1(y_true, y_pred) if len(y_true) else 0.0,
        "per_class_f1": {name: float(f) for name, f in zip(names, per_class, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "labels": names,
    }

