"""A two-hidden-layer perceptron on the expression matrix (torch)."""

from __future__ import annotations

from typing import Any

from celltosg.baselines._torch import TorchClassifier, TorchFitConfig


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


class MLPClassifier(TorchClassifier):
    """G -> hidden -> hidden/2 -> C perceptron with ReLU and dropout, trained by the training engine.

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
        super().__init__(n_classes=n_classes, seed=seed, fit_config=fit_config, device=device)
        self.hidden = int(hidden)
        self.dropout = float(dropout)

    def build(self, n_genes: int):
        return _mlp(n_genes, self.hidden, self.n_classes, self.dropout)

    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "dropout": self.dropout, "lr": self.fit_config.lr}
