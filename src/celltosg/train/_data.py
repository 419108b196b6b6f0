"""What training needs of a cohort, an in-memory cohort, and the two ways to feed it to the engine:
in memory (small cohorts) or streamed from the store (atlas scale)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from celltosg.errors import SplitError
from celltosg.loader import column_moments, normalize_log1p

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


IN_MEMORY_BYTES = 2**30  # a split set larger than this (float32 values) streams from the store by default
SCALING_BLOCK_ROWS = 256  # rows per block of the streaming statistics pass (float64 temporaries stay small)
SAMPLE_VALUES = 20_000_000  # values (rows x genes) of the train sample a streamed skip-path warm start fits


def check_labels(label_mapping: Mapping[str, int], labels: np.ndarray, split: str) -> None:
    """Error when a split has labels outside ``label_mapping``."""
    if len(labels) and (labels.min() < 0 or labels.max() >= len(label_mapping)):
        raise SplitError(f"the {split!r} split has labels outside the {len(label_mapping)} known classes; "
                         "load the cohort with a task so every cell has a label")


def input_scaling(blocks: Iterable[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-gene mean and sd (n_genes,) each of the TRAINING rows, given as blocks (b, n_genes) read in one
    pass (Chan's pairwise merge in float64); an sd of 0 becomes 1.

    Computed from the train split only, so validation and test cells never shape the model's inputs.
    """
    import torch

    n, mean, variance = column_moments(np.asarray(block) for block in blocks)
    if n == 0:
        raise SplitError("no training cells to compute the input standardisation from")
    mean, sd = torch.from_numpy(mean), torch.from_numpy(np.sqrt(variance))
    return mean.float(), torch.where(sd > 1e-6, sd, torch.ones_like(sd)).float()


class MemorySplits:
    """The splits of a cohort held as float32 tensors (n, n_genes): the fast path for small cohorts.

    ``splits[split]`` is ``(X tensor (n, n_genes), y int64 (n,))``.
    """

    def __init__(self, cohort: CohortLike, names: tuple[str, ...], *, labelled: bool = True):
        import torch

        self._data = {}
        for split in names:
            X = np.ascontiguousarray(cohort.X(split), dtype=np.float32)
            if len(X) == 0:
                raise SplitError(f"the cohort's {split!r} split is empty; use a larger cohort or other split "
                                 "fractions")
            y = np.asarray(cohort.labels(split), dtype=np.int64) if labelled else np.full(len(X), -1)
            self._data[split] = (torch.from_numpy(X), y)

    def __getitem__(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        return self._data[split]

    def labels(self, split: str) -> np.ndarray:
        return self._data[split][1]

    def inputs(self, split: str, batch_size: int) -> Iterator[torch.Tensor]:
        """The split's inputs in row order, (b, n_genes) per batch."""
        yield from self._data[split][0].split(batch_size)

    def train_batches(self, batch_size: int, *, rank: int = 0, world_size: int = 1):
        """``batches(epoch, generator)`` of shuffled ``(x, y, rows)`` training batches for :func:`fit`."""
        import torch

        from celltosg.train._engine import tensor_batches

        X, y = self._data["train"]
        return tensor_batches((X, torch.from_numpy(y)), batch_size, rank=rank, world_size=world_size)

    def scaling(self) -> tuple[torch.Tensor, torch.Tensor]:
        return input_scaling([self._data["train"][0]])

    def sample(self, split: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        """The whole split (in memory it is small enough for the skip-path warm start)."""
        return self._data[split]


class StreamSplits:
    """The splits of a store-backed :class:`~celltosg.loader.Cohort`, streamed: training batches through
    the loader's streaming datamodule (whole chunks decoded in a background thread, shuffled inside a
    bounded buffer, every row once per epoch across DDP ranks and workers, ranks padded to equal steps),
    evaluation in row order block by block. Memory stays bounded whatever the cohort's size.
    """

    def __init__(self, cohort, names: tuple[str, ...], *, buffer_size: int = 4096, num_workers: int = 0,
                 seed: int = 0):
        from celltosg.loader import TOSGDataModule

        for split in names:
            if not len(cohort.positions(split)):
                raise SplitError(f"the cohort's {split!r} split is empty; use a larger cohort or other split "
                                 "fractions")
        self.cohort = cohort
        self._labels = {split: np.asarray(cohort.labels(split), dtype=np.int64) for split in names}
        self._module = TOSGDataModule(cohort, buffer_size=buffer_size, num_workers=num_workers, seed=seed,
                                      return_rows=True)

    def labels(self, split: str) -> np.ndarray:
        return self._labels[split]

    def inputs(self, split: str, batch_size: int) -> Iterator[torch.Tensor]:
        import torch

        for _, X in self.cohort.iter_X(split, chunk_rows=batch_size):
            yield torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def train_batches(self, batch_size: int, *, rank: int = 0, world_size: int = 1):
        """``batches(epoch, generator)`` of ``(x, y, rows)`` from the datamodule's training stream; the
        order depends on (seed, epoch) only, so a resumed run streams alike."""
        self._module.batch_size = batch_size
        loader = self._module.train_dataloader()

        def epoch(number: int, _generator) -> Iterator[tuple]:
            loader.dataset.set_epoch(number)
            yield from loader.dataset if loader.num_workers == 0 else iter(loader)

        return epoch

    def scaling(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-gene mean and sd of the train split in one streaming pass."""
        return input_scaling(X for _, X in self.cohort.iter_X("train", chunk_rows=SCALING_BLOCK_ROWS))

    def sample(self, split: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        """A seeded sample of at most :data:`SAMPLE_VALUES` values of a split (rows in store order)."""
        import torch

        from celltosg.loader import read_columns

        y = self._labels[split]
        keep = max(1, SAMPLE_VALUES // len(self.cohort.genes))
        rows = np.arange(len(y))
        if len(rows) > keep:
            rows = np.sort(np.random.default_rng(seed).choice(rows, keep, replace=False))
        counts = read_columns(self.cohort.store, self.cohort.positions(split)[rows], self.cohort.genes)
        X = normalize_log1p(counts, target_sum=self.cohort.target_sum) if self.cohort.normalize else counts
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), y[rows]


def splits_of(cohort: CohortLike, names: tuple[str, ...] = SPLITS, *, stream: bool | None = None,
              labelled: bool = True, **stream_options) -> MemorySplits | StreamSplits:
    """The splits ``names`` of ``cohort`` in memory or streamed.

    ``stream=None`` streams a store-backed cohort without batch correction whose splits exceed
    :data:`IN_MEMORY_BYTES` as float32, and holds the others in memory.
    """
    streamable = hasattr(cohort, "store") and getattr(cohort, "correction_method", None) is None
    if stream is None:
        rows = sum(len(cohort.positions(s)) for s in names) if streamable else 0
        stream = streamable and rows * len(cohort.genes) * 4 > IN_MEMORY_BYTES
    if stream and not streamable:
        raise SplitError("only a store-backed cohort without batch correction can stream; load it with "
                         "celltosg.loader.load_cohort(..., correction_method=None) or pass stream=False")
    if stream:
        return StreamSplits(cohort, names, **stream_options)
    return MemorySplits(cohort, names, labelled=labelled)
