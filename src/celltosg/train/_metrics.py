"""Classification metrics (scikit-learn) as JSON-ready plain types."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


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
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    names = [name for name, _ in sorted(label_mapping.items(), key=lambda item: item[1])]
    classes = np.arange(len(names))
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    present = np.union1d(y_true, y_pred)
    per_class = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class_f1": {name: float(f) for name, f in zip(names, per_class, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "labels": names,
    }

