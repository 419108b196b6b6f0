"""In-place library-size normalisation used when streaming."""

from __future__ import annotations

import numpy as np

from celltosg.loader import normalize_log1p
from celltosg.loader._stream import normalize_log1p_inplace


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
