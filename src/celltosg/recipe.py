"""The one place that defines the CellTOSG-FM configuration and training settings the benchmarks found best.

``benchmarks/pbmc_accuracy.py``, ``benchmarks/label_efficiency.py``, the demo and the CLI defaults all
read :data:`RECIPE`; ``docs/benchmarks.md`` has the measurements behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """Model configuration (FMConfig fields) and training settings.

    Attributes
    ----------
    model
        FMConfig keyword arguments (the rest keep FMConfig's defaults).
    pretrain_epochs, pretrain_lr, pretrain_batch_size, mask_fraction
        Edge-masking pretraining.
    epochs, patience, lr, batch_size
        Fine-tuning (maximum epochs, early-stopping patience on validation macro-F1, AdamW).
    skip_init
        Start of the skip path: ``"logreg"`` (a logistic regression fit on train, C chosen on validation;
        the graph path learns the residual) or ``"random"``.
    """

    model: dict = field(default_factory=dict)
    pretrain_epochs: int = 5
    pretrain_lr: float = 3e-3
    pretrain_batch_size: int = 16
    mask_fraction: float = 0.05
    epochs: int = 40
    patience: int = 10
    lr: float = 3e-3
    batch_size: int = 32
    skip_init: str = "logreg"

    def config(self, **overrides):
        """:class:`celltosg.model.FMConfig` of the recipe with ``overrides`` applied."""
        from celltosg.model import FMConfig

        return FMConfig(**{**self.model, **overrides})


RECIPE = Recipe(model=dict(hidden=16, heads=2, layers=1, readout="per_node", readout_rank=4, readout_dim=128,
                           skip=True, standardize=True, dropout=0.5, node_dropout=0.0),
                epochs=30, patience=6)
