"""A two-hidden-layer perceptron on the expression matrix (torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy
from celltosg.baselines._torch_fit import TorchFitConfig, default_device, fit_module, predict_logits


def _mlp(n_in: int, hidden: int, n_classes: int, dropout: float):
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden // 2),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden // 2, n_classes),
    )


class MLPClassifier(Classifier):
    """G -> hidden -> hidden/2 -> C perceptron with ReLU and dropout, trained by :func:`fit_module`.

    Parameters
    ----------
    hidden
        Width of the first hidden layer.
    dropout
        Dropout probability after each hidden layer.
    fit_config
        Optimisation settings (learning rate, epochs, batch size, patience).
    """

    name = "mlp"

    def __init__(
        self,
        *,
        n_classes: int,
        seed: int = 0,
        hidden: int = 256,
        dropout: float = 0.2,
        fit_config: TorchFitConfig | None = None,
        device=None,
    ) -> None:
        super().__init__(n_classes=n_classes, seed=seed)
        self.hidden = int(hidden)
        self.dropout = float(dropout)
        self.fit_config = fit_config or TorchFitConfig()
        self.device = device or default_device()
        self._module = None

    def fit(self, X_train, y_train, X_val, y_val) -> MLPClassifier:
        """Train with early stopping on the validation rows."""
        import torch

        X, y = check_xy(X_train, y_train, self.n_classes, "mlp training data")
        Xv, yv = check_xy(X_val, y_val, self.n_classes, "mlp validation data")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = _mlp(X.shape[1], self.hidden, self.n_classes, self.dropout)
            self._module = fit_module(
                module, X, y, Xv, yv, n_classes=self.n_classes, config=self.fit_config, seed=self.seed,
                device=self.device,
            )
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, (n, C)."""
        import torch

        X, _ = check_xy(X, None, self.n_classes, "mlp input")
        logits = predict_logits(self._module, X, batch_size=256, device=self.device)
        return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()

    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "dropout": self.dropout, "lr": self.fit_config.lr}
