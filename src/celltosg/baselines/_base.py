"""The one interface every model of the benchmark implements."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from celltosg.errors import MalformedInputError


class Classifier(abc.ABC):
    """A cell classifier trained on arrays.

    Subclasses set :attr:`name` and implement :meth:`fit` and :meth:`predict_proba`.
    Labels are integers ``0 .. n_classes - 1``; ``predict_proba`` always returns ``n_classes`` columns,
    including classes absent from the training labels (probability 0).

    Parameters
    ----------
    n_classes
        Number of classes C.
    seed
        Seed of every random step of the fit.
    """

    name: str = "classifier"

    def __init__(self, *, n_classes: int, seed: int = 0) -> None:
        if n_classes < 2:
            raise MalformedInputError(
                f"{type(self).__name__} needs at least 2 classes, got n_classes={n_classes}; "
                "check the task's labels"
            )
        self.n_classes = int(n_classes)
        self.seed = int(seed)

    @abc.abstractmethod
    def fit(
        self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> Classifier:
        """Train on ``X_train`` (n, G) / ``y_train`` (n,); ``X_val`` / ``y_val`` may steer early stopping."""

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, float (n, C), rows summing to 1."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class per row, int64 (n,)."""
        return np.asarray(self.predict_proba(X)).argmax(axis=1).astype(np.int64)

    def params(self) -> dict[str, Any]:
        """Hyperparameters of this instance (for the results table)."""
        return {}


def check_xy(X: np.ndarray, y: np.ndarray | None, n_classes: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a design matrix (n, G) and integer labels (n,) in ``0 .. n_classes - 1``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise MalformedInputError(f"{where}: expected a 2-D matrix (cells x genes), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise MalformedInputError(f"{where}: the expression matrix holds NaN or infinite values; normalise first")
    if y is None:
        return X, np.empty(0, dtype=np.int64)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise MalformedInputError(f"{where}: {len(y)} labels for {X.shape[0]} rows; give one label per row")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise MalformedInputError(
            f"{where}: labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}; pass integer class codes"
        )
    return X, y.astype(np.int64)


def expand_proba(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Place the columns of ``proba`` (n, len(classes)) at positions ``classes`` of an (n, C) matrix."""
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(classes, dtype=np.int64)] = proba
    total = full.sum(axis=1, keepdims=True)
    return full / np.where(total > 0, total, 1.0)
