"""Donor-level calls: disease is a property of a donor, so its cells' class probabilities are averaged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from celltosg.train import donor_calls


def donor_labels(y: np.ndarray, donors: Sequence) -> np.ndarray | None:
    """Each donor's label (first-seen donor order), or None when some donor's cells carry several labels."""
    frame = pd.DataFrame({"donor": np.asarray(donors).astype(str), "y": np.asarray(y)})
    per_donor = frame.groupby("donor", sort=False)["y"]
    if (per_donor.nunique() > 1).any():
        return None
    return per_donor.first().to_numpy()


def macro_auroc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: binary on column 1, else the mean one-vs-rest AUROC over the classes
    present in ``y_true``; NaN when ``y_true`` holds fewer than 2 classes. ``scores`` (n, C)."""
    from sklearn.metrics import roc_auc_score

    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if scores.shape[1] == 2:
        return float(roc_auc_score(y_true == 1, scores[:, 1]))
    return float(np.mean([roc_auc_score(y_true == c, scores[:, c]) for c in present]))


def donor_metrics(proba: np.ndarray, y_true: np.ndarray, donors: Sequence) -> dict[str, float]:
    """``donor_accuracy`` and ``donor_auroc`` of donor calls (mean probabilities over each donor's cells).

    NaN when a donor's cells carry several labels (a cell-level task such as cell type), and AUROC NaN
    when the donors hold fewer than 2 classes.
    """
    labels = donor_labels(y_true, donors)
    if labels is None:
        return {"donor_accuracy": float("nan"), "donor_auroc": float("nan")}
    classes = [str(c) for c in range(np.asarray(proba).shape[1])]
    calls = donor_calls(proba, donors, classes)
    means = calls[[f"p_{c}" for c in classes]].to_numpy()
    return {"donor_accuracy": float((means.argmax(axis=1) == labels).mean()),
            "donor_auroc": macro_auroc(labels, means)}
