"""Restrict a cohort to some of its genes: the highly variable genes of the training split, or a saved list.

The model's cost grows with the number of graph nodes (every cell holds a state per node), so on a store
over the full human pack (about 20k measured genes, 40k nodes) training reads the most variable genes of
the training cells and their proteins, as scGPT and most single-cell classifiers do (the variance of
the log-normalised training values; scanpy's dispersion flavours rank genes within mean-expression bins,
which on a small test panel picked other genes than the planted variable ones; the variance is one numpy
reduction).
"""

from __future__ import annotations

import logging
from functools import cached_property

import numpy as np

from celltosg.errors import QueryError
from celltosg.loader._normalize import column_moments

log = logging.getLogger(__name__)


class GeneSubset:
    """A view of an in-memory cohort restricted to some of its X columns, with the graph over those genes
    (a store-backed :class:`~celltosg.loader.Cohort` is restricted by :meth:`~celltosg.loader.Cohort.with_genes`
    instead, which reads and normalises only the kept columns).

    The training interface (:class:`celltosg.train.CohortLike`): ``X`` and ``kg`` restricted, ``obs``,
    ``label_mapping`` and ``labels`` the cohort's. Nothing else is passed through, so no unrestricted
    column-wise attribute (store columns, counts) can leak out of the view.

    Parameters
    ----------
    cohort
        A cohort-like object (``X(split)`` columns follow the RNA nodes of ``cohort.kg``).
    columns
        int64 (k,), sorted positions of the kept genes among the cohort's X columns.
    """

    def __init__(self, cohort, columns: np.ndarray):
        columns = np.asarray(columns, dtype=np.int64)
        if columns.size == 0 or np.any(np.diff(columns) <= 0) or columns[0] < 0 or columns[-1] >= cohort.kg.n_rna:
            raise QueryError(f"gene columns must be sorted, distinct and within 0..{cohort.kg.n_rna - 1}")
        self.cohort, self.columns = cohort, columns

    @property
    def obs(self):
        return self.cohort.obs

    @property
    def label_mapping(self) -> dict[str, int]:
        return self.cohort.label_mapping

    def __len__(self) -> int:
        return len(self.cohort.obs)

    @cached_property
    def kg(self):
        """The cohort's graph restricted to the kept genes and their proteins; RNA order = X columns."""
        return self.cohort.kg.subgraph(self.columns)

    def X(self, split: str | None = None) -> np.ndarray:
        """The cohort's values of the kept genes, float32 (n, k)."""
        return np.ascontiguousarray(self.cohort.X(split)[:, self.columns])

    def labels(self, split: str | None = None) -> np.ndarray:
        return self.cohort.labels(split)


def most_variable_genes(cohort, n_genes: int, *, split: str = "train"):
    """``cohort`` restricted to its ``n_genes`` most variable genes over the ``split`` rows (all rows when the
    cohort has no such split); ``cohort`` itself when it measures ``n_genes`` genes or fewer, or ``n_genes``
    is 0.

    Genes are ranked by the variance of their (log-normalised) values, ties by column: only the training
    rows choose them, so validation and test cells never shape the model's inputs.
    """
    if n_genes < 0:
        raise QueryError(f"the number of genes must be 0 (all) or positive, got {n_genes}")
    n_measured = cohort.kg.n_rna
    if n_genes == 0 or n_measured <= n_genes:
        return cohort
    has_split = split in set(cohort.obs["split"]) if "split" in cohort.obs else False
    variance = _variance(cohort, split if has_split else None)
    columns = np.sort(np.argsort(-variance, kind="stable")[:n_genes])
    log.info("reading the %d most variable of %d genes (%s rows)", columns.size, n_measured,
             split if has_split else "all")
    return _restricted(cohort, columns)


def _variance(cohort, split: str | None) -> np.ndarray:
    """Per-column variance (float64, (n_genes,)) of a split's values; a store-backed cohort without batch
    correction is read block by block, so memory stays bounded."""
    if hasattr(cohort, "iter_X") and getattr(cohort, "correction_method", None) is None:
        blocks = (block for _, block in cohort.iter_X(split))
    else:
        blocks = [cohort.X(split)]
    n, _, variance = column_moments(blocks)
    if n == 0:
        raise QueryError(f"the cohort has no {split or 'rows'} rows to choose genes from")
    return variance


def _restricted(cohort, columns: np.ndarray):
    """``cohort`` on its X columns ``columns``: a store-backed cohort re-reads only them, others are viewed."""
    if hasattr(cohort, "with_genes"):
        return cohort.with_genes(np.asarray(cohort.genes)[columns])
    return GeneSubset(cohort, columns)


def restrict_genes(cohort, node_ids: list[str]):
    """``cohort`` restricted to the RNA nodes ``node_ids`` (a checkpoint's genes), in the cohort's order.

    An error names the genes the cohort lacks; ``cohort`` itself when it has exactly these genes.
    """
    kg = cohort.kg
    ids = kg.nodes["node_id"].astype(str).to_numpy()[: kg.n_rna]
    if list(ids) == list(node_ids):
        return cohort
    position = {node: i for i, node in enumerate(ids)}
    missing = [node for node in node_ids if node not in position]
    if missing:
        raise QueryError(f"the cohort lacks {len(missing)} of the {len(node_ids)} genes of the checkpoint (first: "
                         f"{missing[:5]}); use a cohort of the same store, or train without that checkpoint")
    columns = np.array([position[node] for node in node_ids], dtype=np.int64)
    if np.any(np.diff(columns) <= 0):
        raise QueryError("the checkpoint's genes are not in the cohort's gene order; rebuild the checkpoint "
                         "from this store")
    return _restricted(cohort, columns)
