"""Class-contrastive attributions on the omic values: gradient x input and integrated gradients.

Both methods explain a scalar per cell, the *target*:

- class-contrastive (default): ``logit_c - mean_{j != c} logit_j``, what makes class c this class rather
  than any other;
- against one class (``contrast_index = k``): ``logit_c - logit_k``.

They differentiate the model's public forward, ``model(x)["logits"]``, with respect to the RNA values
``x`` (B, n_rna): whatever the readout is, the attribution is on the expression values the model reads.
The baseline ``b`` (n_rna,) is the reference profile the attribution is measured against: the cohort's
mean profile (default: a gene scores by how its departure from the average cell moves the target) or
zeros (no expression):

- ``gradient_x_input``: ``d target / d x * (x - b)`` (first-order Taylor term of target(x) - target(b));
- ``integrated_gradients``: ``(x - b) * integral_0^1 d target / d x (b + a (x - b)) da`` (Sundararajan et al.
  2017), by Captum's ``IntegratedGradients`` (Gauss-Legendre quadrature); its attributions sum to
  ``target(x) - target(b)`` (completeness).

The per-gene score is the mean over the explained cells; a positive score pushes the cells towards the
class. A protein node takes the score of its RNA node (the one of largest magnitude when several map to
it, through the graph's internal RNA -> protein edges). There are no edge scores.
"""

from __future__ import annotations

import numpy as np
import torch

from celltosg.errors import CellTOSGError

GRADIENT_METHODS = ("gradient_x_input", "integrated_gradients")
BASELINES = ("mean", "zeros")


def contrastive_target(logits: torch.Tensor, class_index: int, contrast_index: int | None = None) -> torch.Tensor:
    """(B,) the explained scalar: ``logit_c - mean of the other logits`` or ``logit_c - logit_k``.

    Parameters
    ----------
    logits
        (B, C).
    class_index
        c.
    contrast_index
        k, or None for the mean of all other classes.
    """
    n_classes = logits.shape[1]
    for index in (class_index, contrast_index):
        if index is not None and not 0 <= index < n_classes:
            raise CellTOSGError(f"class index {index} is not an output of the model's head ({n_classes} classes); "
                                "explain a fine-tuned classifier with one of its classes")
    if contrast_index is not None:
        if contrast_index == class_index:
            raise CellTOSGError("the contrast class is the explained class; pass a different --contrast")
        return logits[:, class_index] - logits[:, contrast_index]
    if n_classes < 2:
        return logits[:, class_index]
    others = (logits.sum(1) - logits[:, class_index]) / (n_classes - 1)
    return logits[:, class_index] - others


def baseline_profile(X: np.ndarray, baseline: str | np.ndarray) -> np.ndarray:
    """float32 (n_rna,) reference profile: ``"mean"`` of ``X`` (n, n_rna), ``"zeros"``, or an explicit array."""
    n_rna = np.shape(X)[1]
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros(n_rna, dtype=np.float32)
        if baseline == "mean":
            return np.asarray(X, dtype=np.float64).mean(0).astype(np.float32)
        raise CellTOSGError(f"unknown baseline {baseline!r}; choose one of {BASELINES}")
    profile = np.asarray(baseline, dtype=np.float32)
    if profile.shape != (n_rna,):
        raise CellTOSGError(f"the baseline has shape {profile.shape} but the inputs have {n_rna} genes; "
                            "give one value per RNA node")
    return profile


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def batches(X: np.ndarray, batch_size: int):
    """float32 tensors (b, n_rna) of ``batch_size`` consecutive rows of ``X``, with a progress bar."""
    from celltosg.progress import progress

    starts = range(0, len(X), batch_size)
    for start in progress(starts, description="explaining cells", total=len(starts)):
        yield torch.as_tensor(np.asarray(X[start : start + batch_size], dtype=np.float32))


def rna_attribution(model: torch.nn.Module, X: np.ndarray, class_index: int, *, method: str,
                    baseline: np.ndarray, contrast_index: int | None = None, batch_size: int = 8,
                    n_steps: int = 24) -> np.ndarray:
    """Mean attribution per RNA node over the cells of ``X``.

    Parameters
    ----------
    model
        A classifier whose ``model(x)["logits"]`` maps (B, n_rna) to (B, C).
    X
        (n, n_rna) model inputs of the cells to explain.
    class_index, contrast_index
        The target (see :func:`contrastive_target`).
    method
        ``"gradient_x_input"`` or ``"integrated_gradients"``.
    baseline
        (n_rna,) reference profile (:func:`baseline_profile`).
    n_steps
        Quadrature points of integrated gradients.

    Returns
    -------
    np.ndarray
        float64 (n_rna,).
    """
    if method not in GRADIENT_METHODS:
        raise ValueError(f"unknown gradient method {method!r}; choose one of {GRADIENT_METHODS}")
    device = model_device(model)
    reference = torch.as_tensor(baseline, dtype=torch.float32, device=device).unsqueeze(0)

    def target(x: torch.Tensor) -> torch.Tensor:
        logits = model(x).get("logits")
        if logits is None:
            raise CellTOSGError("the model has no classification head; explain a fine-tuned classifier")
        return contrastive_target(logits, class_index, contrast_index)

    model.eval()
    total = torch.zeros(np.shape(X)[1], dtype=torch.float64)
    for x in batches(X, batch_size):
        x = x.to(device)
        if method == "gradient_x_input":
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(target(x).sum(), x)
            attribution = grad * (x - reference)
        else:
            from captum.attr import IntegratedGradients

            attribution = IntegratedGradients(target).attribute(
                x, baselines=reference.expand_as(x), n_steps=n_steps, internal_batch_size=batch_size)
        total += attribution.detach().sum(0).double().cpu()
    return (total / max(len(X), 1)).numpy()


def node_scores(rna: np.ndarray, n_nodes: int, internal_edge_index) -> np.ndarray:
    """(N,) node scores from (n_rna,) RNA scores: each protein takes its RNA's (largest magnitude wins)."""
    node = np.zeros(n_nodes)
    node[: len(rna)] = rna
    src, dst = np.asarray(internal_edge_index.cpu() if hasattr(internal_edge_index, "cpu") else internal_edge_index)
    order = np.argsort(np.abs(rna[src]), kind="stable")  # largest magnitude written last wins
    node[dst[order]] = rna[src[order]]
    return node
