"""In-place library-size normalisation used when streaming."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.loader import TOSGDataset, normalize_log1p
from celltosg.loader._normalize import normalize_log1p_inplace


def test_normalize_in_place_matches_the_formula():
    counts = np.array([[1, 0, 3], [0, 0, 0], [2, 2, 0]], dtype=np.float32)
    x = counts.copy()
    assert normalize_log1p_inplace(x, target_sum=10.0) is x
    expected = np.log1p(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 10.0)
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_normalize_in_place_equals_the_copying_version_exactly():
    counts = np.random.default_rng(0).poisson(2.0, (20, 50)).astype(np.float32)
    counts[3] = 0
    expected = normalize_log1p(counts)
    np.testing.assert_array_equal(normalize_log1p_inplace(counts.copy()), expected)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_streamed_raw_rows_are_the_stored_rows(cohort_store, cohort_store_data, batch_size):
    _, X = cohort_store_data
    positions = np.arange(0, cohort_store.n_cells, 3)
    columns = np.array([5, 0, 2])
    ds = TOSGDataset(cohort_store, positions, labels=positions, columns=columns, normalize=False,
                     batch_size=batch_size, buffer_size=40, seed=3)
    rows, labels = [], []
    for x, y in ds:  # rows are kept while later buffers fill: each must stay intact
        rows.append(x.numpy().reshape(-1, len(columns)))
        labels.append(np.atleast_1d(y.numpy() if hasattr(y, "numpy") else y))
    labels = np.concatenate(labels)
    assert sorted(labels.tolist()) == positions.tolist()
    np.testing.assert_array_equal(np.concatenate(rows), X[labels][:, columns])
