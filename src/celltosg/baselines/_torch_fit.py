"""One seeded training loop for the torch classifiers: class-weighted cross-entropy, Adam, early stopping."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from celltosg.baselines._metrics import macro_f1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchFitConfig:
    """Optimisation settings shared by the torch classifiers."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 64
    patience: int = 10


def default_device():
    """CUDA when available, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights n / (C_present * n_c) per class (0 for classes absent from ``y``), float32 (C,)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def predict_logits(module, X: np.ndarray, *, batch_size: int, device) -> np.ndarray:
    """Run ``module`` on ``X`` (n, G) in eval mode, batch by batch; logits float32 (n, C)."""
    import torch

    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xb = torch.as_tensor(X[start : start + batch_size], device=device)
            out.append(module(xb).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def fit_module(
    module,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    n_classes: int,
    config: TorchFitConfig,
    seed: int,
    device,
):
    """Train ``module`` (maps float (B, G) to logits (B, C)) and return it with its best-validation weights.

    Each epoch shuffles with a generator seeded by ``seed``; the state with the highest validation
    macro-F1 (ties: lower validation loss) is kept; training stops after ``patience`` epochs without gain.
    Call inside ``torch.random.fork_rng`` with the global seed set, so dropout is reproducible too.
    """
    import torch
    import torch.nn.functional as F

    from celltosg.train._memory import reuse_freed_memory

    reuse_freed_memory()
    module.to(device)
    weight = torch.as_tensor(class_weights(y_train, n_classes), device=device)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    X_t = torch.as_tensor(X_train)
    y_t = torch.as_tensor(y_train, dtype=torch.long)
    best = (-np.inf, np.inf)
    best_state = copy.deepcopy(module.state_dict())
    stale = 0
    for epoch in range(config.epochs):
        module.train()
        order = torch.randperm(len(X_t), generator=generator)
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            logits = module(X_t[idx].to(device))
            loss = F.cross_entropy(logits, y_t[idx].to(device), weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        val_logits = predict_logits(module, X_val, batch_size=config.batch_size * 4, device=device)
        val_loss = float(
            F.cross_entropy(torch.as_tensor(val_logits), torch.as_tensor(y_val, dtype=torch.long), weight=weight.cpu())
        )
        score = (macro_f1(y_val, val_logits.argmax(1), n_classes), -val_loss)
        if score > (best[0], -best[1]):
            best = (score[0], val_loss)
            best_state = copy.deepcopy(module.state_dict())
            stale = 0
        else:
            stale += 1
        logger.debug("epoch %d: val macro-F1 %.4f, val loss %.4f", epoch, score[0], val_loss)
        if stale >= config.patience:
            break
    module.load_state_dict(best_state)
    return module
