"""Pieces shared by the single-process and distributed fine-tuning loops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from celltosg.train._data import batches

if TYPE_CHECKING:
    import torch


def predict_logits(model, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Class logits (n, C) on CPU of the rows of ``X`` (n, n_genes), in eval mode and without gradients."""
    import torch

    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = [model(X[idx].to(device))["logits"].cpu() for idx in batches(len(X), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


def evaluate(model, X: torch.Tensor, y: np.ndarray, weights: torch.Tensor, batch_size: int) -> dict:
    """Weighted cross-entropy ``loss``, ``accuracy`` and ``macro_f1`` of ``model`` on (X, y)."""
    import torch
    from sklearn.metrics import f1_score

    logits = predict_logits(model, X, batch_size)
    target = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss = torch.nn.functional.cross_entropy(logits, target, weight=weights.cpu()).item()
    pred = logits.argmax(1).numpy()
    return {"loss": float(loss), "accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}


def better(score: dict, best: dict | None) -> bool:
    """Model selection on validation: higher macro-F1, ties broken by lower loss."""
    if best is None:
        return True
    return (score["macro_f1"], -score["loss"]) > (best["macro_f1"], -best["loss"])


def epoch_generator(seed: int, epoch: int):
    """The shuffling generator of one epoch, derived from (seed, epoch) so a resumed run reshuffles alike."""
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


def cpu_state(module) -> dict:
    """A detached CPU copy of ``module.state_dict()``."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
