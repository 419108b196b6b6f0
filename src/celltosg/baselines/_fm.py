"""CellTOSG-FM behind the Classifier interface: fine-tuned through ``celltosg.train``, and the reference
configuration (``celltosg.model.ReferenceFM``) trained by the training engine like the other torch baselines."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy, expand_proba
from celltosg.baselines._torch import TorchClassifier, TorchFitConfig
from celltosg.errors import MalformedInputError

logger = logging.getLogger(__name__)


def _label_names(codes: np.ndarray) -> np.ndarray:
    """Zero-padded class codes, so the training API's sorted label order is the code order."""
    return np.char.zfill(codes.astype(str), 6)


def _check_graph_columns(X: np.ndarray, kg, who: str) -> None:
    if X.shape[1] != kg.n_rna:
        raise MalformedInputError(
            f"{who}: {X.shape[1]} expression columns but the graph has {kg.n_rna} RNA nodes; "
            "align the columns to the graph (celltosg.evaluation.align_to_kg)"
        )


class PretrainCache:
    """Pretrained checkpoints shared by the fits of one benchmark, one per (training set, seed, config),
    kept in a temporary directory that is removed with the cache."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="celltosg-pretrain-")
        self._entries: dict[tuple, tuple[Path, float]] = {}

    def path(self, key: tuple) -> Path:
        """Where the checkpoint of ``key`` goes."""
        return Path(self._dir.name) / f"pretrained-{len(self._entries)}.ckpt"

    def get(self, key: tuple) -> tuple[Path, float] | None:
        """``(checkpoint, seconds it took)`` or None."""
        return self._entries.get(key)

    def put(self, key: tuple, path: Path, seconds: float) -> None:
        self._entries[key] = (path, seconds)


class CellTOSGFMClassifier(Classifier):
    """CellTOSG-FM fine-tuned with :func:`celltosg.train.finetune`, optionally after :func:`~celltosg.train.pretrain`.

    ``fit`` builds an in-memory cohort of the training and validation cells only; the validation cells
    also stand in for the training API's test split, so test cells never reach ``fit``. Pretraining
    uses the training cells; with a shared ``pretrain_cache`` (a dict) the checkpoint is made once per
    training set and configuration (:class:`PretrainCache`), and :attr:`untimed_seconds` reports its
    time when it was reused.

    Parameters
    ----------
    kg
        Knowledge graph whose RNA node ``i`` is expression column ``i``.
    config
        :class:`celltosg.model.FMConfig` (the head size is set from ``n_classes``).
    graph
        Precomputed :class:`celltosg.model.GraphInputs` of ``kg`` (default: built by the training API).
    pretrain_epochs
        0 = no pretraining.
    epochs, batch_size, lr, patience
        Fine-tuning settings.
    device
        Torch device of training and prediction (default: CUDA when available).
    """

    name = "celltosg_fm"

    def __init__(
        self,
        *,
        n_classes: int,
        kg,
        config=None,
        graph=None,
        seed: int = 0,
        pretrain_epochs: int = 0,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        patience: int = 5,
        task: str = "cell_type",
        pretrain_cache: PretrainCache | None = None,
        device=None,
    ) -> None:
        super().__init__(n_classes=n_classes, seed=seed)
        from celltosg.model import FMConfig
        from celltosg.train import default_device

        self.device = str(device or default_device())
        self.kg, self.graph = kg, graph
        self.config = config or FMConfig()
        self.pretrain_epochs, self.epochs, self.batch_size = int(pretrain_epochs), int(epochs), int(batch_size)
        self.lr, self.patience, self.task = float(lr), int(patience), task
        self.pretrain_cache = pretrain_cache
        self.untimed_seconds = 0.0
        self._model = None
        self._classes = None

    def _pretrained(self, cohort, workdir: Path, X_train: np.ndarray) -> Path | None:
        from celltosg.train import pretrain

        if self.pretrain_epochs <= 0:
            return None
        key = (X_train.shape, float(X_train.sum()), self.seed, repr(self.config), self.pretrain_epochs)
        cached = self.pretrain_cache.get(key) if self.pretrain_cache is not None else None
        if cached is not None:
            self.untimed_seconds = cached[1]
            return cached[0]
        out = self.pretrain_cache.path(key) if self.pretrain_cache is not None else workdir / "pretrained.ckpt"
        start = time.perf_counter()
        pretrain(cohort, config=self.config, epochs=self.pretrain_epochs, batch_size=self.batch_size,
                 seed=self.seed, out=out, graph=self.graph, device=self.device)
        if self.pretrain_cache is not None:
            self.pretrain_cache.put(key, out, time.perf_counter() - start)
        return out

    def fit(self, X_train, y_train, X_val, y_val) -> CellTOSGFMClassifier:
        """Pretrain (optional) and fine-tune with selection on the validation cells."""
        from celltosg.train import InMemoryCohort, build_model, finetune, load_checkpoint

        X, y = check_xy(X_train, y_train, self.n_classes, "CellTOSG-FM training data")
        Xv, yv = check_xy(X_val, y_val, self.n_classes, "CellTOSG-FM validation data")
        _check_graph_columns(X, self.kg, "CellTOSG-FM")
        split = np.repeat(np.array(["train", "val", "test"], dtype=object), [len(X), len(Xv), len(Xv)])
        cohort = InMemoryCohort(np.concatenate([X, Xv, Xv]), split, self.kg,
                                labels=_label_names(np.concatenate([y, yv, yv])))
        with tempfile.TemporaryDirectory(prefix="celltosg-fm-") as workdir:
            pretrained = self._pretrained(cohort, Path(workdir), X)
            result = finetune(cohort, task=self.task, out_dir=Path(workdir) / "finetune", config=self.config,
                              pretrained=pretrained, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              patience=self.patience, seed=self.seed, resume=False,
                              graph=None if pretrained is not None else self.graph, device=self.device)
            self._model = build_model(load_checkpoint(result.checkpoint), path=result.checkpoint)[0].to(self.device)
        mapping = cohort.label_mapping
        self._classes = np.array([int(name) for name, _ in sorted(mapping.items(), key=lambda kv: kv[1])])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the fine-tuned model's logits, (n, C)."""
        import torch

        from celltosg.train import input_batches, predict_logits

        X, _ = check_xy(X, None, self.n_classes, "CellTOSG-FM input")
        _check_graph_columns(X, self.kg, "CellTOSG-FM")
        logits = predict_logits(self._model, input_batches(X, 256))
        return expand_proba(torch.softmax(logits.double(), 1).numpy(), self._classes, self.n_classes)

    def params(self) -> dict[str, Any]:
        return {"hidden": self.config.hidden, "lr": self.lr, "pretrain_epochs": self.pretrain_epochs}


class ReferenceFMClassifier(TorchClassifier):
    """The reference configuration (:class:`celltosg.model.ReferenceFM`: one number per text embedding,
    hidden 8, N-wide readout) trained by the training engine like the other torch baselines (Adam,
    class-weighted cross-entropy, early stopping on validation macro-F1).

    Parameters
    ----------
    graph
        :class:`celltosg.model.GraphInputs` whose RNA node ``i`` is expression column ``i``.
    hidden, layers, conv
        Passed to ``ReferenceFM``.
    """

    name = "reference_fm"
    predict_batch_size = 64

    def __init__(self, *, n_classes: int, graph, seed: int = 0, hidden: int = 8, layers: int = 2,
                 conv: str = "gat", fit_config: TorchFitConfig | None = None, device=None) -> None:
        super().__init__(n_classes=n_classes, seed=seed,
                         fit_config=fit_config or TorchFitConfig(batch_size=4, epochs=50), device=device)
        self.graph, self.hidden, self.layers, self.conv = graph, int(hidden), int(layers), conv

    def check(self, X: np.ndarray) -> None:
        if X.shape[1] != self.graph.n_rna:
            raise MalformedInputError(f"reference FM: {X.shape[1]} columns for {self.graph.n_rna} RNA nodes")

    def build(self, n_genes: int):
        from celltosg.model import ReferenceFM

        return ReferenceFM(self.graph, self.n_classes, hidden=self.hidden, layers=self.layers, conv=self.conv)

    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "conv": self.conv, "lr": self.fit_config.lr}
