"""Store writer and reader: exact round trips, chunk-wise iteration, storage types, AnnData compatibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltosg.errors import MalformedInputError, QueryError, StoreError
from celltosg.io_utils import dir_bytes
from celltosg.kg import KnowledgeGraph
from celltosg.store import TOSGStore, create_store


def _obs(n):
    return pd.DataFrame({"disease": ["normal", "flu"] * (n // 2) + ["normal"] * (n % 2)},
                        index=[f"c{i}" for i in range(n)])


def test_tiny_store_fixture_holds_the_exact_counts(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    assert tiny_store.n_cells == X.shape[0] == 240
    assert tiny_store.n_nodes == tiny_store.kg.n_rna == 40
    everything = tiny_store.read_rows(np.arange(tiny_store.n_cells))
    assert everything.dtype == np.float32
    np.testing.assert_array_equal(everything, X)
    assert list(tiny_store.obs.columns[:3]) == ["cell_id", "shard", "row"]
    assert tiny_store.obs["cell_id"].is_unique


def test_read_rows_returns_rows_in_the_order_asked_with_repeats(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    positions = np.array([239, 0, 17, 17, 64, 63, 5, 128, 200])
    np.testing.assert_array_equal(tiny_store.read_rows(positions), X[positions])
    assert tiny_store.read_rows(np.array([], dtype=np.int64)).shape == (0, 40)


def test_read_rows_rejects_out_of_range_positions(tiny_store):
    with pytest.raises(QueryError, match="0..239"):
        tiny_store.read_rows([240])
    with pytest.raises(QueryError, match="integers"):
        tiny_store.read_rows([0.5])


def test_iter_chunks_visits_every_row_once_in_whole_chunks(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    seen = []
    obs = tiny_store.obs
    for positions, block in tiny_store.iter_chunks():
        np.testing.assert_array_equal(block, X[positions])
        # one chunk: a single shard, rows inside one 16-row chunk
        assert obs.loc[positions, "shard"].nunique() == 1
        assert (obs.loc[positions, "row"] // 16).nunique() == 1
        seen.append(positions)
    seen = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(seen), np.arange(240))


def test_iter_chunks_with_positions_keeps_order_inside_a_chunk(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    asked = np.array([20, 3, 18, 1, 100])
    chunks = list(tiny_store.iter_chunks(asked))
    np.testing.assert_array_equal(chunks[0][0], [3, 1])
    np.testing.assert_array_equal(chunks[1][0], [20, 18])
    np.testing.assert_array_equal(chunks[2][0], [100])
    for positions, block in chunks:
        np.testing.assert_array_equal(block, X[positions])


@pytest.mark.parametrize(("values", "dtype"), [
    (np.array([0, 3, 255]), "uint8"),
    (np.array([0, 256, 7]), "uint16"),
    (np.array([0, 70_000, 1]), "uint32"),
    (np.array([0.0, 1.5, 2.25]), "float32"),
])
def test_storage_type_is_the_smallest_lossless_one(tmp_path, tiny_kg, values, dtype):
    X = np.zeros((3, tiny_kg.n_rna))
    X[:, 0] = values
    store = create_store(tmp_path / "s", X, _obs(3), tiny_kg)
    assert store.manifest["shards"][0]["dtype"] == dtype
    np.testing.assert_array_equal(store.read_rows([0, 1, 2])[:, 0], values.astype(np.float32))


def test_sparse_and_dense_input_give_identical_shards(tmp_path, tiny_kg):
    X = np.random.default_rng(1).poisson(0.7, size=(30, tiny_kg.n_rna))
    a = create_store(tmp_path / "a", X, _obs(30), tiny_kg, shard_size=16, chunk_rows=8)
    b = create_store(tmp_path / "b", sp.csr_matrix(X.astype(np.float64)), _obs(30), tiny_kg, shard_size=16,
                     chunk_rows=8)
    assert [s["sha256"] for s in a.manifest["shards"]] == [s["sha256"] for s in b.manifest["shards"]]
    assert [s["n_rows"] for s in a.manifest["shards"]] == [16, 14]


def test_shards_are_anndata_zarr_v3(tmp_path, tiny_kg):
    import anndata as ad

    X = np.arange(4 * tiny_kg.n_rna).reshape(4, -1)
    store = create_store(tmp_path / "s", X, _obs(4), tiny_kg)
    shard = tmp_path / "s" / "shards" / "part-0000.zarr"
    assert json.loads((shard / "zarr.json").read_text())["zarr_format"] == 3
    adata = ad.read_zarr(shard)
    np.testing.assert_array_equal(np.asarray(adata.X), X)
    assert list(adata.obs_names) == ["c0", "c1", "c2", "c3"]
    assert list(adata.var_names) == list(tiny_kg.nodes["node_id"][: tiny_kg.n_rna])
    assert store.var["symbol"].tolist() == tiny_kg.rna_symbols.tolist()


def test_obs_defaults_and_list_raw_cells(tmp_path, tiny_kg):
    obs = pd.DataFrame({"cell_id": ["m0", "m1"], "n_raw_cells": [2, 1], "raw_cells": [["a", "b"], ["c"]]})
    store = create_store(tmp_path / "s", np.ones((2, tiny_kg.n_rna)), obs, tiny_kg)
    assert store.obs["raw_cells"].tolist() == ["a;b", "c"]
    assert store.manifest["n_raw_cells"] == 3


def test_compression_stays_under_two_bytes_per_value(tmp_path, tiny_kg_dir):
    from tests.conftest import make_tiny_pack

    kg = KnowledgeGraph.load(make_tiny_pack(tmp_path / "kg", n_genes=4000, n_proteins=20))
    rng = np.random.default_rng(0)
    # meta-cells of ~30 cells: gamma-Poisson gene rates, most genes low
    rate = rng.gamma(0.3, 3.0, kg.n_rna)
    X = rng.poisson(rng.integers(10, 50, (512, 1)) * rate[None, :] / 10)
    store = create_store(tmp_path / "s", sp.csr_matrix(X), _obs(512), kg, chunk_rows=256)
    per_value = store.info()["expression_bytes"] / X.size
    assert per_value <= 2.0, per_value
    np.testing.assert_array_equal(store.read_rows(np.arange(512)), X)


@pytest.mark.parametrize(("bad", "message"), [(np.nan, "NaN"), (-1.0, "negative"), (np.inf, "infinite")])
def test_bad_values_are_clear_errors(tmp_path, tiny_kg, bad, message):
    X = np.ones((3, tiny_kg.n_rna))
    X[1, 2] = bad
    with pytest.raises(MalformedInputError, match=message):
        create_store(tmp_path / "s", X, _obs(3), tiny_kg)
    assert not (tmp_path / "s").exists()


def test_shape_mismatch_and_existing_path_are_errors(tmp_path, tiny_kg):
    with pytest.raises(MalformedInputError, match=f"\\(n_cells, {tiny_kg.n_rna}\\)"):
        create_store(tmp_path / "s", np.ones((3, 5)), _obs(3), tiny_kg)
    with pytest.raises(MalformedInputError, match="obs has 2 rows"):
        create_store(tmp_path / "s", np.ones((3, tiny_kg.n_rna)), _obs(2), tiny_kg)
    create_store(tmp_path / "s", np.ones((3, tiny_kg.n_rna)), _obs(3), tiny_kg)
    with pytest.raises(StoreError, match="already exists"):
        create_store(tmp_path / "s", np.ones((3, tiny_kg.n_rna)), _obs(3), tiny_kg)


def test_dir_bytes_matches_expression_bytes(tiny_store):
    assert tiny_store.info()["expression_bytes"] == dir_bytes(tiny_store.root / "shards")


def test_open_errors_name_the_problem(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        TOSGStore.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="not a TOSG store"):
        TOSGStore.open(tmp_path / "empty")


def test_columns_whose_type_differs_between_shards_are_stored_as_text(tmp_path, tiny_kg):
    obs = pd.DataFrame({"batch": [1, 2, "b3", None]}, index=["a", "b", "c", "d"])
    store = create_store(tmp_path / "s", np.ones((4, tiny_kg.n_rna)), obs, tiny_kg, shard_size=2)
    assert store.obs["batch"].tolist() == ["1", "2", "b3", None]


def test_read_rows_into_fills_the_given_buffer(tiny_store, tiny_store_data):
    _, X = tiny_store_data
    positions = np.concatenate([np.arange(16, 32), [3, 200, 3]])  # one whole chunk, then scattered rows
    out = np.full((len(positions), 40), -1.0)
    assert tiny_store.read_rows_into(positions, out) is out
    np.testing.assert_array_equal(out, X[positions])
    with pytest.raises(QueryError, match="expected"):
        tiny_store.read_rows_into(positions, np.empty((2, 40), dtype=np.float32))
