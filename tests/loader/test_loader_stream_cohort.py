"""A small cohort reads each store row once: finding its measured genes keeps the counts for X."""

from __future__ import annotations

import numpy as np

from celltosg.loader import load_cohort, normalize_log1p


class _CountingStore:
    """Delegates to a store and counts the rows read."""

    def __init__(self, store):
        self._store, self.rows_read = store, 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def read_rows(self, positions):
        self.rows_read += len(positions)
        return self._store.read_rows(positions)


def test_genes_then_values_read_every_row_once(cohort_store, cohort_store_data):
    cohort = load_cohort(cohort_store, {"tissue_general": "brain"}, task="cell_type", seed=3)
    counting = _CountingStore(cohort_store)
    cohort.store = counting
    genes = cohort.genes
    values = {s: cohort.X(s) for s in cohort.splits}
    assert counting.rows_read == len(np.unique(cohort.positions()))
    X = cohort_store_data[1]  # the exact counts the store was written from
    for split, got in values.items():
        expected = normalize_log1p(X[cohort.positions(split)][:, genes])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert np.array_equal(genes, np.flatnonzero((X[np.unique(cohort.positions())] != 0).any(axis=0)))
