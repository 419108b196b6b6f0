"""CellTypist trained locally with the real package; never downloads a model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy, expand_proba
from celltosg.errors import MalformedInputError

logger = logging.getLogger(__name__)

_LOG1P_1E4 = 9.22  # the largest value CellTypist's annotate accepts


@contextlib.contextmanager
def _quiet_celltypist() -> Iterator[None]:
    """Silence CellTypist's per-step INFO lines (its warnings still show)."""
    ct_logger = logging.getLogger("celltypist.logger")
    level = ct_logger.level
    ct_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ct_logger.setLevel(level)


class CellTypistClassifier(Classifier):
    """CellTypist logistic regression trained with ``celltypist.train`` and applied with ``annotate``.

    The model object is passed to ``annotate`` (never a model name, which would download one).

    Parameters
    ----------
    genes
        Gene names of the columns, (G,); unique.
    C
        Inverse regularisation strength of CellTypist's logistic regression.
    feature_selection
        CellTypist's two-pass training on its top genes.
    """

    name = "celltypist"

    def __init__(
        self,
        *,
        n_classes: int,
        genes: np.ndarray,
        seed: int = 0,
        C: float = 1.0,
        feature_selection: bool = False,
    ) -> None:
        super().__init__(n_classes=n_classes, seed=seed)
        self.genes = np.asarray(genes).astype(str)
        if len(set(self.genes)) != len(self.genes):
            raise MalformedInputError("celltypist: gene names must be unique; deduplicate the columns first")
        self.C = float(C)
        self.feature_selection = bool(feature_selection)
        self._model = None

    def fit(self, X_train, y_train, X_val, y_val) -> CellTypistClassifier:
        """Train CellTypist on the training rows (class codes as string labels)."""
        import celltypist

        X, y = check_xy(X_train, y_train, self.n_classes, "celltypist training data")
        if X.shape[1] != len(self.genes):
            raise MalformedInputError(
                f"celltypist: {X.shape[1]} columns but {len(self.genes)} gene names; they must match"
            )
        np.random.seed(self.seed)  # celltypist's SGD and feature selection draw from numpy's global state
        with _quiet_celltypist():
            self._model = celltypist.train(
                X,
                labels=y.astype(str),
                genes=self.genes,
                check_expression=False,
                C=self.C,
                feature_selection=self.feature_selection,
                n_jobs=1,
            )
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n, C) from ``celltypist.annotate``, rows renormalised to sum to 1."""
        import anndata
        import celltypist

        X, _ = check_xy(X, None, self.n_classes, "celltypist input")
        if len(X) and (X.min() < 0 or X.max() > _LOG1P_1E4):
            raise MalformedInputError(
                f"celltypist: values span {X.min():.3g}..{X.max():.3g}; CellTypist needs log1p expression "
                "normalised to 1e4 counts per cell (0..9.22); pass the log-normalised matrix, not scaled data"
            )
        adata = anndata.AnnData(X=X)
        adata.var_names = self.genes
        adata.obs_names = [f"c{i}" for i in range(X.shape[0])]
        with _quiet_celltypist():
            result = celltypist.annotate(adata, model=self._model, mode="best match")
        probability = result.probability_matrix
        classes = probability.columns.astype(int).to_numpy()
        return expand_proba(probability.to_numpy(dtype=np.float64), classes, self.n_classes)

    def params(self) -> dict[str, Any]:
        return {"C": self.C, "feature_selection": self.feature_selection}
