"""The Cohort: a queried, balanced, split selection of a store's meta-cells, read on demand."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from functools import cached_property

import numpy as np
import pandas as pd

from celltosg.errors import QueryError
from celltosg.loader._correct import CorrectionReport, check_method, correct_batches
from celltosg.loader._labels import encode
from celltosg.loader._normalize import TARGET_SUM, normalize_log1p
from celltosg.loader._splits import SPLITS

logger = logging.getLogger(__name__)

READ_BLOCK_ROWS = 2048
KEEP_READ_BYTES = 2**28  # a cohort whose rows take at most this (all store columns) keeps the counts read


def read_columns(store, positions: np.ndarray, columns: np.ndarray | None = None,
                 block_rows: int = READ_BLOCK_ROWS) -> np.ndarray:
    """Rows ``positions`` (may repeat) of the store restricted to ``columns``, float32 (n, len(columns)).

    Reads each distinct row once, ``block_rows`` at a time, so memory stays near the output size.
    """
    unique, inverse = np.unique(np.asarray(positions, dtype=np.int64), return_inverse=True)
    width = store.n_nodes if columns is None else len(columns)
    out = np.empty((len(unique), width), dtype=np.float32)
    for start in range(0, len(unique), block_rows):
        block = store.read_rows(unique[start:start + block_rows])
        out[start:start + block_rows] = block if columns is None else block[:, columns]
    return out[inverse]


class Cohort:
    """Meta-cells chosen from a store, with their split, labels and graph; values are read on demand.

    Attributes
    ----------
    store
        The :class:`~celltosg.store.TOSGStore` the rows come from.
    obs
        One row per cohort member (RangeIndex): the store's obs columns, ``position`` (store row; repeats
        when a row was resampled), ``split`` in {train, val, test} and ``label`` (text) when the task has one.
    task, label_column, label_mapping
        The task, the obs column of its labels and label -> class index (None for unlabelled cohorts).
    correction_method
        None, ``"combat_seq"`` or ``"combat"``; applied to each split on its own so that no split's data
        shapes another's values.
    """

    def __init__(self, store, obs: pd.DataFrame, *, task: str, label_column: str | None,
                 label_mapping: dict[str, int] | None, normalize: bool = True, target_sum: float = TARGET_SUM,
                 correction_method: str | None = None, batch_key: str = "dataset_id",
                 group_key: str = "tissue_general", covariate: str | None = None):
        self.store = store
        self.obs = obs.reset_index(drop=True)
        self.task = task
        self.label_column = label_column
        self.label_mapping = label_mapping
        self.normalize = normalize
        self.target_sum = target_sum
        self.correction_method = check_method(correction_method)
        self.batch_key, self.group_key, self.covariate = batch_key, group_key, covariate
        self._values: dict[str, np.ndarray] = {}
        self._kept: tuple[np.ndarray, np.ndarray] | None = None
        self.correction_reports: dict[str, CorrectionReport] = {}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={n}" for s, n in self.obs["split"].value_counts().reindex(self.splits).items())
        return f"Cohort(task={self.task!r}, n={len(self.obs)}: {sizes}, classes={self.label_mapping})"

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def splits(self) -> tuple[str, ...]:
        """Non-empty splits, in the order train, val, test."""
        present = set(self.obs["split"])
        return tuple(s for s in SPLITS if s in present)

    def _rows(self, split: str | None) -> np.ndarray:
        if split is None:
            return np.arange(len(self.obs))
        if split not in SPLITS:
            raise QueryError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or None for all rows.")
        return np.flatnonzero(self.obs["split"].to_numpy() == split)

    def positions(self, split: str | None = None) -> np.ndarray:
        """Store positions (int64, (n,)) of a split's rows (all rows for None)."""
        return self.obs["position"].to_numpy(dtype=np.int64)[self._rows(split)]

    # ------------------------------------------------------------------ genes and graph
    @cached_property
    def genes(self) -> np.ndarray:
        """Store columns (= pack RNA node indices, int64, sorted) with a nonzero count in any cohort row."""
        unique = np.unique(self.positions())
        measured = np.zeros(self.store.n_nodes, dtype=bool)
        keep = len(unique) * self.store.n_nodes * 4 <= KEEP_READ_BYTES
        raw = np.empty((len(unique), self.store.n_nodes), dtype=np.float32) if keep else None
        for start in range(0, len(unique), READ_BLOCK_ROWS):
            block = self.store.read_rows(unique[start:start + READ_BLOCK_ROWS])
            measured |= (block != 0).any(axis=0)
            if keep:
                raw[start:start + len(block)] = block
        genes = np.flatnonzero(measured).astype(np.int64)
        if genes.size == 0:
            raise QueryError("every count of this cohort is zero; the selected meta-cells hold no expression.")
        if keep:  # a small cohort keeps its counts, so X does not read the rows a second time
            self._kept = (unique, raw[:, genes])
        logger.info("cohort measures %d of %d genes", genes.size, self.store.n_nodes)
        return genes

    def with_genes(self, genes: np.ndarray) -> Cohort:
        """This cohort on the store columns ``genes`` (sorted, a subset of :attr:`genes`): values are read and
        normalised over these columns only, as a model that reads only these genes normalises new data."""
        genes = np.asarray(genes, dtype=np.int64)
        if genes.size == 0 or np.any(np.diff(genes) <= 0) or not np.isin(genes, self.genes).all():
            raise QueryError("the genes to keep must be sorted, distinct store columns that the cohort measures")
        subset = copy.copy(self)
        for cached in ("kg", "var"):
            subset.__dict__.pop(cached, None)
        subset.__dict__["genes"] = genes
        subset._values, subset.correction_reports = {}, {}
        if self._kept is not None:
            unique, counts = self._kept
            subset._kept = (unique, counts[:, np.searchsorted(self.genes, genes)])
        return subset

    @cached_property
    def var(self) -> pd.DataFrame:
        """One row per X column: node_index, node_id, symbol."""
        return self.store.var.iloc[self.genes].reset_index(drop=True)

    @cached_property
    def kg(self):
        """The store's pack restricted to the measured genes and their proteins; RNA order = X columns."""
        return self.store.kg.subgraph(self.genes)

    def text_embeddings(self, **kwargs) -> np.ndarray:
        """Node text embeddings of :attr:`kg`, float32 (kg.n_nodes, 384) (cached on disk per node)."""
        from celltosg.encode import text_embeddings

        return text_embeddings(self.kg, **kwargs)

    def sequence_features(self, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """Protein sequence features of :attr:`kg`: float32 (kg.n_nodes, dim) and a bool mask (kg.n_nodes,)."""
        from celltosg.encode import sequence_features

        return sequence_features(self.kg, **kwargs)

    # ------------------------------------------------------------------ values
    def counts(self, split: str | None = None) -> np.ndarray:
        """Raw summed counts, float32 (n, n_genes), columns = :attr:`genes`."""
        return self._read(self.positions(split))

    def _read(self, positions: np.ndarray) -> np.ndarray:
        """Counts of store rows ``positions`` on :attr:`genes`: kept from :attr:`genes` or read."""
        genes = self.genes
        if self._kept is not None:
            unique, counts = self._kept
            return counts[np.searchsorted(unique, positions)]
        return read_columns(self.store, positions, genes)

    def _transform(self, counts: np.ndarray, obs: pd.DataFrame, split: str) -> np.ndarray:
        values = counts
        if self.correction_method == "combat_seq":
            values, self.correction_reports[split] = self._correct(values, obs, split)
        if self.normalize:
            values = normalize_log1p(values, target_sum=self.target_sum)
        if self.correction_method == "combat":
            values, self.correction_reports[split] = self._correct(values, obs, split)
        return values.astype(np.float32, copy=False)

    def _correct(self, values: np.ndarray, obs: pd.DataFrame, split: str) -> tuple[np.ndarray, CorrectionReport]:
        """Batch-correct one split; the label covariate is used on training (or unsplit) rows only, since
        correcting validation or test rows with their own labels would leak the labels into their values."""
        covariate = self.covariate if split in ("train", "all") else None
        return correct_batches(values, obs, method=self.correction_method, batch_key=self.batch_key,
                               covariate=covariate, group_key=self.group_key)

    def X(self, split: str | None = None) -> np.ndarray:
        """Model-ready values, float32 (n, n_genes): normalised (1e4 + log1p) and batch-corrected as set.

        Batch correction runs on the split alone (for None: on each split alone, then stacked; an
        unsplit cohort is corrected as one).
        """
        key = split or "all"
        if key not in self._values:
            if split is None and self.correction_method is not None and self.splits:
                out = np.empty((len(self.obs), len(self.genes)), dtype=np.float32)
                for s in self.splits:
                    out[self._rows(s)] = self.X(s)
                self._values[key] = out
            else:
                rows = self._rows(split)
                self._values[key] = self._transform(self.counts(split), self.obs.iloc[rows], key)
        return self._values[key]

    def iter_X(self, split: str | None = None, *, chunk_rows: int = READ_BLOCK_ROWS
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, X)`` blocks of a split without holding it whole: row numbers into :attr:`obs`
        (int64, (b,)) and float32 (b, n_genes). Not available with batch correction (it needs the split)."""
        if self.correction_method is not None:
            raise QueryError("chunked reading cannot batch-correct; use cohort.X(split) or correction_method=None.")
        rows = self._rows(split)
        for start in range(0, len(rows), chunk_rows):
            block = rows[start:start + chunk_rows]
            counts = self._read(self.obs["position"].to_numpy(dtype=np.int64)[block])
            yield block, normalize_log1p(counts, target_sum=self.target_sum) if self.normalize else counts

    def labels(self, split: str | None = None) -> np.ndarray:
        """Class indices (int64, (n,)) per :attr:`label_mapping`."""
        if self.label_mapping is None:
            raise QueryError(f"task {self.task!r} has no labels; pass label_column=... to load_cohort.")
        return encode(self.obs["label"].iloc[self._rows(split)], self.label_mapping)

    def to_anndata(self, split: str | None = None):
        """An AnnData of a split: X = :meth:`X`, layers["counts"], obs (with label and split), var = genes."""
        import anndata as ad

        rows = self._rows(split)
        obs = self.obs.iloc[rows].copy()
        obs.index = [f"{cid}#{i}" for cid, i in zip(obs["cell_id"].astype(str), rows, strict=True)]
        obs = obs.astype({c: "string" for c in obs.columns if obs[c].dtype == object})
        var = self.var.set_index(self.var["symbol"].astype(str).to_numpy())
        var.index.name = None
        uns = {"task": self.task, "split": split or "all", "kg_checksum": self.store.manifest["kg_checksum"]}
        if self.label_mapping is not None:
            uns["label_mapping"] = {k: int(v) for k, v in self.label_mapping.items()}
        return ad.AnnData(X=self.X(split), obs=obs, var=var, layers={"counts": self.counts(split)}, uns=uns)
