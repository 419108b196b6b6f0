"""Multinomial logistic regression on the log-normalised expression matrix (scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy, expand_proba


class LogisticRegressionClassifier(Classifier):
    """L2-penalised multinomial logistic regression (lbfgs) on the expression matrix.

    Parameters
    ----------
    C
        Inverse regularisation strength.
    max_iter
        Iteration cap of the lbfgs solver.
    """

    name = "logreg"

    def __init__(self, *, n_classes: int, seed: int = 0, C: float = 1.0, max_iter: int = 1000) -> None:
        super().__init__(n_classes=n_classes, seed=seed)
        self.C = float(C)
        self.max_iter = int(max_iter)
        self._model = None

    def fit(self, X_train, y_train, X_val, y_val) -> LogisticRegressionClassifier:
        """Fit on the training rows; validation rows are not used (no early stopping)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        X, y = check_xy(X_train, y_train, self.n_classes, "logreg training data")
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        self._model = model
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, C)."""
        X, _ = check_xy(X, None, self.n_classes, "logreg input")
        return expand_proba(self._model.predict_proba(X), self._model.classes_, self.n_classes)

    def params(self) -> dict[str, Any]:
        return {"C": self.C}
