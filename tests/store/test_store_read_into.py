"""read_rows_into: rows decoded straight into a caller's array, whole-chunk and gathered paths alike."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.errors import QueryError
from celltosg.store import TOSGStore


def test_read_rows_into_fills_the_given_array(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    whole_chunks = np.arange(tiny_store.n_cells)
    scattered = np.array([239, 3, 3, 130, 0, 64, 65, 66])
    for positions in (whole_chunks, scattered):
        for dtype in (np.float32, np.float64):
            out = np.full((len(positions), tiny_store.n_nodes), -1, dtype=dtype)
            assert tiny_store.read_rows_into(positions, out) is out
            np.testing.assert_array_equal(out, X[positions])


def test_read_rows_into_rejects_a_wrong_shape(tiny_store):
    with pytest.raises(QueryError, match="expected"):
        tiny_store.read_rows_into([0, 1], np.empty((3, tiny_store.n_nodes), dtype=np.float32))


def test_locating_rows_does_not_load_the_whole_obs_table(tiny_store_data):
    root, X = tiny_store_data
    store = TOSGStore.open(root)
    np.testing.assert_array_equal(store.read_rows([5, 200]), X[[5, 200]])
    assert "obs" not in store.__dict__

