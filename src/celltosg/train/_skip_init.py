"""Warm start of the skip path: class-balanced L2 logistic regression on the standardised train split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SKIP_INITS = ("logreg", "random")
C_GRID = (1.0, 0.1, 10.0, 0.01)


def init_skip_from_logreg(model, train: tuple[torch.Tensor, np.ndarray], val: tuple[torch.Tensor, np.ndarray],
                          n_classes: int, seed: int = 0) -> float | None:
    """Set ``model.skip`` (Linear(n_rna, C)) to a logistic regression fit on the model's standardised inputs.

    The inverse L2 strength ``C`` is chosen from :data:`C_GRID` by validation macro-F1 (train-only fit, so
    test cells are never seen); the graph path then learns a residual on top of the convex optimum of the
    skip path. Classes absent from train keep zero weights. Returns the chosen ``C`` (None without a skip
    path or with fewer than two classes in train).

    Parameters
    ----------
    train, val
        (X (n, n_rna) raw omic values, y (n,) class indices) of each split.
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    present = np.unique(train[1])
    if model.skip is None or len(present) < 2:
        return None
    with torch.no_grad():
        X_train, X_val = (model.scale_input(x).double().cpu().numpy() for x in (train[0], val[0]))
    best = None
    for C in C_GRID:
        fit = LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed)
        fit.fit(X_train, train[1])
        score = f1_score(val[1], fit.predict(X_val), average="macro", zero_division=0) if len(val[1]) else 0.0
        if best is None or score > best[0]:
            best = (score, C, fit)
    _, C, fit = best
    coef, intercept = fit.coef_, fit.intercept_
    if len(present) == 2:  # binary scikit-learn fit: one row for the second class
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, -10.0)
    weight[present], bias[present] = coef, intercept
    with torch.no_grad():
        model.skip.weight.copy_(torch.as_tensor(weight, dtype=model.skip.weight.dtype))
        model.skip.bias.copy_(torch.as_tensor(bias, dtype=model.skip.bias.dtype))
    return C
