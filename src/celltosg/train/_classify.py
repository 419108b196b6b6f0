"""Classification through the training engine: the class-weighted cross-entropy plan, its validation score,
batched prediction and class weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def logits_of(out) -> torch.Tensor:
    """The logits of a model output: the tensor itself or its ``"logits"`` entry."""
    return out["logits"] if isinstance(out, dict) else out


def predict_logits(model, batches: Iterable, *, device=None) -> torch.Tensor:
    """Class logits (n, C) on CPU of the model over ``batches`` of inputs (b, n_genes), in eval mode and
    without gradients; the model's train / eval mode is restored after."""
    import torch

    was_training = model.training
    device = device or next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = [logits_of(model(x.to(device))).float().cpu() for x in batches]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


def input_batches(X, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive (b, n_genes) float32 tensors of an array or tensor ``X`` (n, n_genes)."""
    import torch

    for start in range(0, len(X), batch_size):
        yield torch.as_tensor(np.asarray(X[start:start + batch_size], dtype=np.float32)) \
            if not isinstance(X, torch.Tensor) else X[start:start + batch_size]


def evaluate(model, batches: Iterable, y: np.ndarray, weights: torch.Tensor) -> dict[str, float]:
    """Weighted cross-entropy ``loss``, ``accuracy`` and ``macro_f1`` of ``model`` on ``batches`` with labels y."""
    import torch

    from celltosg.train._metrics import accuracy, macro_f1

    logits = predict_logits(model, batches)
    target = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss = torch.nn.functional.cross_entropy(logits, target, weight=weights.cpu()).item()
    pred = logits.argmax(1).numpy()
    return {"loss": float(loss), "accuracy": accuracy(y, pred), "macro_f1": macro_f1(y, pred)}


class ClassifierPlan:
    """Class-weighted cross-entropy of a classifier; validation = :func:`evaluate` on held-out batches.

    Parameters
    ----------
    module
        Maps float (B, n_genes) to logits (B, C) or to a dict with ``"logits"``.
    weights
        float (C,) class weights of the loss.
    val
        ``(batches, y)``: a callable giving the validation input batches afresh, and their labels (n_val,).
    """

    def __init__(self, module, weights: torch.Tensor, val: tuple[Callable[[], Iterable], np.ndarray] | None):
        self.module, self.weights, self.val = module, weights, val

    def step(self, model, batch, generator):
        import torch

        x, y = batch[0], batch[1]
        logits = logits_of(model(x))
        loss = torch.nn.functional.cross_entropy(logits, y, weight=self.weights.to(logits.device))
        return loss, {}, len(y)

    def validate(self) -> dict[str, float] | None:
        if self.val is None:
            return None
        batches, y = self.val
        return evaluate(self.module, batches(), y, self.weights)


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency class weights n / (C_present * n_c), float32 (n_classes,); 0 for absent classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
