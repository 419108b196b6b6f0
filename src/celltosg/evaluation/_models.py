"""The models of ``celltosg benchmark``, each with a hyperparameter grid of the same size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from celltosg.baselines import (
    GNN_KINDS,
    CellTypistClassifier,
    GNNClassifier,
    LogisticRegressionClassifier,
    MLPClassifier,
    TorchFitConfig,
)
from celltosg.errors import UnknownIdentifierError
from celltosg.evaluation._harness import ModelSpec
from celltosg.evaluation._split import Split

GRID_SIZE = 4  # configurations evaluated on validation data per model: the shared tuning budget


def _celltypist(split: Split, params: dict, seed: int):
    return CellTypistClassifier(n_classes=split.n_classes, genes=split.genes, seed=seed, **params)


def _logreg(split: Split, params: dict, seed: int):
    return LogisticRegressionClassifier(n_classes=split.n_classes, seed=seed, **params)


def _mlp(split: Split, params: dict, seed: int, fit_config: TorchFitConfig):
    lr = params.pop("lr")
    return MLPClassifier(n_classes=split.n_classes, seed=seed, fit_config=replace(fit_config, lr=lr), **params)


def _gnn(kind: str, fit_config: TorchFitConfig):
    def build(split: Split, params: dict, seed: int):
        lr = params.pop("lr")
        return GNNClassifier(n_classes=split.n_classes, kg=split.kg, kind=kind, seed=seed,
                             fit_config=replace(fit_config, lr=lr), **params)

    return build


def model_specs(names: Sequence[str] | str = "all", *, quick: bool = False) -> list[ModelSpec]:
    """The benchmark's models in report order (``"all"`` or a list of names from :func:`model_names`).

    ``quick`` caps epochs for smoke runs; grids stay the same size.
    """
    epochs = 15 if quick else 100
    mlp_fit = TorchFitConfig(epochs=epochs, batch_size=64, patience=10)
    gnn_fit = TorchFitConfig(epochs=min(epochs, 60), batch_size=32, patience=8)
    C_grid = tuple({"C": c} for c in (0.01, 0.1, 1.0, 10.0))
    specs = [
        ModelSpec("celltypist", _celltypist, C_grid, description="CellTypist (celltypist.train, local)"),
        ModelSpec("logreg", _logreg, C_grid, description="logistic regression (scikit-learn)"),
        ModelSpec(
            "mlp", lambda s, p, seed: _mlp(s, p, seed, mlp_fit),
            tuple({"hidden": h, "dropout": 0.2, "lr": lr} for h in (256, 1024) for lr in (1e-3, 3e-4)),
            description="two-hidden-layer perceptron (torch)",
        ),
    ]
    specs += [
        ModelSpec(kind, _gnn(kind, gnn_fit),
                  tuple({"hidden": h, "lr": lr} for h in (16, 64) for lr in (3e-3, 1e-3)),
                  needs_graph=True, description=f"{kind.upper()} baseline, power-mean readout")
        for kind in GNN_KINDS
    ]
    by_name = {spec.name: spec for spec in specs}
    if names == "all" or list(names) == ["all"]:
        return specs
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UnknownIdentifierError(f"unknown models {unknown}; choose from {list(by_name)} or 'all'")
    return [by_name[n] for n in names]


def model_names() -> list[str]:
    """Names accepted by :func:`model_specs`."""
    return [spec.name for spec in model_specs("all")]
