"""The torch classifiers' shared part: settings, and fit / predict through the training engine
(class-weighted cross-entropy, Adam, selection and early stopping on validation macro-F1)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy


@dataclass(frozen=True)
class TorchFitConfig:
    """Optimisation settings shared by the torch classifiers."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 64
    patience: int = 10


class TorchClassifier(Classifier):
    """A classifier whose torch module (float (B, G) -> logits (B, C)) is trained by
    :func:`celltosg.train.fit`; subclasses build the module in :meth:`build` and may check inputs in
    :meth:`check`. Every random step (initialisation, shuffling, dropout) follows ``seed``.

    Parameters
    ----------
    fit_config
        Optimisation settings (learning rate, epochs, batch size, patience).
    device
        Torch device of training and prediction (default: CUDA when available).
    """

    predict_batch_size = 256

    def __init__(self, *, n_classes: int, seed: int = 0, fit_config: TorchFitConfig | None = None,
                 device=None) -> None:
        from celltosg.train import default_device

        super().__init__(n_classes=n_classes, seed=seed)
        self.fit_config = fit_config or TorchFitConfig()
        self.device = str(device or default_device())
        self._module = None

    @abc.abstractmethod
    def build(self, n_genes: int):
        """The untrained module for ``n_genes`` input columns."""

    def check(self, X: np.ndarray) -> None:
        """Raise :class:`~celltosg.errors.MalformedInputError` when ``X`` (n, G) does not fit the model."""

    def fit(self, X_train, y_train, X_val, y_val) -> TorchClassifier:
        """Train with selection and early stopping on the validation rows."""
        import torch

        from celltosg.train import (
            ClassifierPlan,
            FitSettings,
            class_weights,
            fit,
            input_batches,
            seeded,
            tensor_batches,
        )

        X, y = check_xy(X_train, y_train, self.n_classes, f"{self.name} training data")
        Xv, yv = check_xy(X_val, y_val, self.n_classes, f"{self.name} validation data")
        self.check(X)
        config = self.fit_config
        weights = torch.from_numpy(class_weights(y, self.n_classes))
        settings = FitSettings(epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay,
                               optimizer="adam", cosine=False, patience=config.patience, seed=self.seed,
                               device=self.device, description=self.name)
        batches = tensor_batches((torch.from_numpy(X), torch.from_numpy(y)), config.batch_size)
        with seeded(self.seed):
            module = self.build(X.shape[1])
            plan = ClassifierPlan(module, weights, (lambda: input_batches(Xv, config.batch_size * 4), yv))
            result = fit(plan, batches, settings)
        module.load_state_dict(result.best_state)
        self._module = module
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, (n, C)."""
        import torch

        from celltosg.train import input_batches, predict_logits

        X, _ = check_xy(X, None, self.n_classes, f"{self.name} input")
        self.check(X)
        logits = predict_logits(self._module, input_batches(X, self.predict_batch_size))
        return torch.softmax(logits.double(), dim=1).numpy()

    def params(self) -> dict[str, Any]:
        return {"lr": self.fit_config.lr}
