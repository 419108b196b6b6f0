"""What training needs of a cohort, an in-memory cohort, and seeded mini-batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from celltosg.errors import SplitError

if TYPE_CHECKING:
    import torch

    from celltosg.kg import KnowledgeGraph

SPLITS = ("train", "val", "test")


class CohortLike(Protocol):
    """The part of :class:`celltosg.loader.Cohort` that training uses."""

    obs: pd.DataFrame
    label_mapping: dict[str, int]

    @property
    def kg(self) -> KnowledgeGraph: ...

    def X(self, split: str) -> np.ndarray: ...

    def labels(self, split: str) -> np.ndarray: ...


class InMemoryCohort:
    """A cohort held in memory: expression, a split column, labels and the graph over its genes.

    Parameters
    ----------
    X
        float32 (n_cells, n_genes), log-normalised; columns follow the RNA nodes of ``kg``.
    split
        (n_cells,) values in {"train", "val", "test"}.
    kg
        Knowledge graph whose RNA nodes are the columns of ``X``.
    labels
        Optional label names (n_cells,); classes are numbered in sorted order.
    """

    def __init__(self, X: np.ndarray, split, kg: KnowledgeGraph, labels=None):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != kg.n_rna:
            raise SplitError(f"expression has shape {X.shape} but the graph has {kg.n_rna} RNA nodes; "
                             "give one column per RNA node of the graph")
        self._X = X
        self.kg = kg
        self.obs = pd.DataFrame({"split": np.asarray(split, dtype=object)})
        if len(self.obs) != len(X):
            raise SplitError(f"{len(self.obs)} split values for {len(X)} cells; give one per cell")
        unknown = set(self.obs["split"]) - set(SPLITS)
        if unknown:
            raise SplitError(f"unknown split values {sorted(unknown)}; use {list(SPLITS)}")
        if labels is None:
            self.label_mapping: dict[str, int] = {}
            self._labels = np.full(len(X), -1, dtype=np.int64)
        else:
            names = np.asarray(labels).astype(str)
            self.label_mapping = {str(name): i for i, name in enumerate(sorted(set(names)))}
            self._labels = np.array([self.label_mapping[n] for n in names], dtype=np.int64)
            self.obs["label"] = names

    def _mask(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise SplitError(f"unknown split {split!r}; use one of {list(SPLITS)}")
        return (self.obs["split"] == split).to_numpy()

    def X(self, split: str) -> np.ndarray:
        """Expression of one split, float32 (n_split, n_genes)."""
        return self._X[self._mask(split)]

    def labels(self, split: str) -> np.ndarray:
        """Class indices of one split, int64 (n_split,)."""
        return self._labels[self._mask(split)]


def split_tensor(cohort: CohortLike, split: str) -> torch.Tensor:
    """One split's expression as a float32 tensor (n, n_genes); an empty split is an error."""
    import torch

    X = np.ascontiguousarray(cohort.X(split), dtype=np.float32)
    if len(X) == 0:
        raise SplitError(f"the cohort's {split!r} split is empty; use a larger cohort or other split fractions")
    return torch.from_numpy(X)


def input_scaling(X_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-gene mean and sd (n_genes,) each of the TRAINING rows ``X_train`` (n, n_genes); an sd of 0 becomes 1.

    Computed from the train split only, so validation and test cells never shape the model's inputs.
    """
    import torch

    if len(X_train) == 0:
        raise SplitError("no training cells to compute the input standardisation from")
    X = X_train.double()
    mean = X.mean(0)
    sd = X.std(0, unbiased=False)
    return mean.float(), torch.where(sd > 1e-6, sd, torch.ones_like(sd)).float()


def held_out_tensor(cohort: CohortLike) -> torch.Tensor:
    """Expression of the val and test cells together (the cells training never sees)."""
    import torch

    parts = [np.asarray(cohort.X(s), dtype=np.float32) for s in ("val", "test")]
    X = np.concatenate(parts)
    if len(X) == 0:
        raise SplitError("the cohort has no val or test cells to evaluate on; make a split with held-out cells")
    return torch.from_numpy(X)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Row indices (b,) of consecutive mini-batches over ``n`` rows, shuffled when a generator is given."""
    import torch

    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency class weights, float32 (n_classes,), mean 1 over the classes present."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def check_labels(label_mapping: Mapping[str, int], labels: np.ndarray, split: str) -> None:
    """Error when a split has labels outside ``label_mapping``."""
    if len(labels) and (labels.min() < 0 or labels.max() >= len(label_mapping)):
        raise SplitError(f"the {split!r} split has labels outside the {len(label_mapping)} known classes; "
                         "load the cohort with a task so every cell has a label")
