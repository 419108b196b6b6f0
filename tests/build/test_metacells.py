from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltosg.build import _seacells
from celltosg.build._metacells import _aggregate_obs, make_metacells, metacell_quality


def _clustered(n_per: int = 30, n_types: int = 3, donors=("d1", "d2"), seed: int = 0) -> ad.AnnData:
    """Poisson counts, 120 genes, cell types with distinct programmes, per donor and disease state."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, size=(n_types, 120))
    for t in range(n_types):
        base[t, t * 20:(t + 1) * 20] *= 12.0
    rows, obs = [], []
    for donor in donors:
        for disease in ("normal", "flu"):
            for t in range(n_types):
                rows.append(rng.poisson(base[t], size=(n_per, 120)))
                obs += [{"donor_id": donor, "disease": disease, "cell_type": f"type{t}",
                         "sex": ["female", "male"][t % 2], "n_genes": t} for _ in range(n_per)]
    order = rng.permutation(len(obs))
    X = np.vstack(rows)[order].astype(np.float32)
    frame = pd.DataFrame(obs).iloc[order].reset_index(drop=True)
    frame.index = [f"cell{i}" for i in range(len(frame))]
    return ad.AnnData(sp.csr_matrix(X), obs=frame, var=pd.DataFrame(index=[f"G{i}" for i in range(120)]))


def _members(metacells: ad.AnnData) -> list[list[str]]:
    return [s.split(";") for s in metacells.obs["raw_cells"]]


@pytest.mark.parametrize("method", ["fast", "seacells"])
def test_metacells_sum_members_and_never_mix_groups(method):
    cells = _clustered()
    mc = make_metacells(cells, method=method, size=10, seed=0)
    members = _members(mc)
    flat = [c for m in members for c in m]
    assert sorted(flat) == sorted(cells.obs_names) and len(flat) == cells.n_obs
    assert mc.obs["n_raw_cells"].tolist() == [len(m) for m in members]
    dense = cells.X.toarray()
    position = {name: i for i, name in enumerate(cells.obs_names)}
    expected = np.stack([dense[[position[c] for c in m]].sum(axis=0) for m in members])
    np.testing.assert_array_equal(mc.X.toarray(), expected)
    for row, m in zip(mc.obs.itertuples(), members, strict=True):
        sub = cells.obs.loc[m]
        assert set(sub["donor_id"]) == {row.donor_id} and set(sub["disease"]) == {row.disease}
    # 4 groups of 90 cells -> about 9 meta-cells each; the cell types are well separated
    assert 30 <= mc.n_obs <= 40
    assert mc.obs["cell_type_purity"].mean() > 0.95
    quality = metacell_quality(cells, mc, label_key="cell_type")
    assert quality["purity"] > 0.95 and quality["within_variance"] < 0.8


def test_same_seed_same_metacells_and_size_one_keeps_cells():
    cells = _clustered(n_per=12)
    first = make_metacells(cells, method="seacells", size=6, seed=3)
    again = make_metacells(cells, method="seacells", size=6, seed=3)
    assert first.obs["raw_cells"].tolist() == again.obs["raw_cells"].tolist()
    single = make_metacells(cells, size=1)
    assert single.obs["raw_cells"].tolist() == list(cells.obs_names)
    np.testing.assert_array_equal(single.X.toarray(), cells.X.toarray())
    assert (single.obs["n_raw_cells"] == 1).all() and (single.obs["cell_type_purity"] == 1.0).all()
    assert metacell_quality(cells, single)["within_variance"] == pytest.approx(0.0, abs=1e-9)


def test_missing_groupby_columns_mean_one_group():
    cells = _clustered(n_per=10, donors=("d1",))
    cells.obs = cells.obs.drop(columns=["donor_id", "disease"])
    mc = make_metacells(cells, size=len(cells.obs))
    assert mc.n_obs == 1 and mc.obs["n_raw_cells"].iloc[0] == cells.n_obs
    assert metacell_quality(cells, mc)["within_variance"] == pytest.approx(1.0)


def test_majority_mean_and_purity_by_hand():
    obs = pd.DataFrame(
        {"cell_type": ["T", "B", "B", "NK", "NK"], "sex": pd.Categorical(["f", "m", "m", "f", "m"]),
         "age": [10.0, 20.0, 60.0, 1.0, np.nan], "donor_id": ["x", "x", "x", "y", "y"]},
        index=list("abcde"),
    )
    out = _aggregate_obs(obs, np.array([0, 0, 0, 1, 1]), 2, ["donor_id"])
    assert out["raw_cells"].tolist() == ["a;b;c", "d;e"]
    assert out["cell_type"].tolist() == ["B", "NK"]
    np.testing.assert_allclose(out["cell_type_purity"], [2 / 3, 1.0])
    assert out["sex"].tolist() == ["m", "f"]  # tie in the second: first seen value wins
    assert isinstance(out["sex"].dtype, pd.CategoricalDtype)
    np.testing.assert_allclose(out["age"], [30.0, 1.0])
    assert out["donor_id"].tolist() == ["x", "y"]


# ----------------------------------------------------------------------------------- SEACells internals
def _random_kernel(n: int = 25, seed: int = 0, n_neighbors: int = 6):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    M = _seacells.adaptive_kernel(Z, n_neighbors=n_neighbors)
    return Z, M, sp.csr_matrix(M @ M.T)


def test_adaptive_kernel_matches_formula():
    Z, M, _ = _random_kernel()
    dense = M.toarray()
    np.testing.assert_allclose(dense, dense.T)
    np.testing.assert_allclose(np.diag(dense), 1.0)
    d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))
    sigma = np.sort(d, axis=1)[:, 3]  # 3rd nearest other cell (6 // 2), column 0 is the cell itself
    i, j = np.nonzero(dense)
    np.testing.assert_allclose(dense[i, j], np.exp(-d[i, j] ** 2 / (sigma[i] * sigma[j])))
    knn = np.argsort(d, axis=1)[:, 1:6]
    union = np.zeros_like(dense, dtype=bool)
    union[np.repeat(np.arange(len(Z)), 5), knn.ravel()] = True
    np.testing.assert_array_equal(dense > 0, union | union.T | np.eye(len(Z), dtype=bool))


def test_frank_wolfe_updates_equal_naive_recomputed_gradients():
    _, M, K = _random_kernel(n_neighbors=25)  # a dense kernel: no exact ties among gradient entries
    rng = np.random.default_rng(1)
    n, k = K.shape[0], 4
    Kd = K.toarray()
    B = np.zeros((n, k))
    B[[0, 5, 10, 15], np.arange(k)] = 1.0
    A = rng.random((k, n))
    A /= A.sum(0)

    A_naive = A.copy()
    for t in range(7):
        grad = 2 * (B.T @ Kd @ B @ A_naive - B.T @ Kd)
        e = np.zeros_like(A_naive)
        e[grad.argmin(0), np.arange(n)] = 1
        A_naive += 2 / (t + 2) * (e - A_naive)
    A_fast = _seacells.update_assignments(K, B, A, 7)
    np.testing.assert_allclose(A_fast, A_naive, atol=1e-12)

    B_naive = B.copy()
    for t in range(7):
        grad = 2 * (Kd @ B_naive @ A_fast @ A_fast.T - Kd @ A_fast.T)
        e = np.zeros_like(B_naive)
        e[grad.argmin(0), np.arange(k)] = 1
        B_naive += 2 / (t + 2) * (e - B_naive)
    np.testing.assert_allclose(_seacells.update_archetypes(K, A_fast, B, 7), B_naive, atol=1e-12)
    np.testing.assert_allclose(
        _seacells.reconstruction_error(M, K, A_fast, B_naive),
        np.linalg.norm(M.toarray() - M.toarray() @ B_naive @ A_fast),
    )


def test_greedy_selection_matches_explicit_residuals():
    _, _, K = _random_kernel(seed=2)
    Kd = K.toarray()
    chosen: list[int] = []
    for _ in range(5):
        if chosen:
            S = np.array(chosen)
            E = Kd - Kd[:, S] @ np.linalg.solve(Kd[np.ix_(S, S)], Kd[S, :])
        else:
            E = Kd
        score = (E**2).sum(0) / np.maximum(np.diag(E), 1e-300)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    assert _seacells.greedy_column_selection(K, 5).tolist() == chosen


def test_max_min_sampling_picks_farthest_points():
    components = np.array([[0.0], [1.0], [5.0], [2.0], [4.9]])
    picks = _seacells.max_min_sampling(components, 3, np.random.default_rng(0))
    start = int(picks[0])
    farthest = int(np.argmax(np.abs(components[:, 0] - components[start, 0])))
    assert picks[1] == farthest and len(set(picks.tolist())) == 3


@pytest.mark.scale
def test_fast_metacells_handle_a_million_cells():
    rng = np.random.default_rng(0)
    n, genes, per_cell = 1_000_000, 500, 60
    types = rng.integers(0, 8, n)
    programme = rng.gamma(0.3, 1.0, (8, genes)) + 0.01
    cumulative = np.cumsum(programme / programme.sum(1, keepdims=True), axis=1)
    rows = np.repeat(np.arange(n), per_cell)
    cols = np.empty(n * per_cell, dtype=np.int64)
    for t in range(8):
        at = np.flatnonzero(types[rows] == t)
        cols[at] = np.minimum(np.searchsorted(cumulative[t], rng.random(len(at))), genes - 1)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, genes))
    obs = pd.DataFrame({"donor_id": (np.arange(n) % 4).astype(str), "cell_type": types.astype(str)},
                       index=[f"c{i}" for i in range(n)])
    mc = make_metacells(ad.AnnData(X, obs=obs), method="fast", size=50)
    assert mc.obs["n_raw_cells"].sum() == n and 15_000 < mc.n_obs < 25_000
    assert mc.obs["cell_type_purity"].mean() > 0.95
    assert mc.X.sum() == X.sum()


def test_highly_variable_genes_match_dense_variance():
    from celltosg.build._metacells import highly_variable_genes

    rng = np.random.default_rng(3)
    dense = rng.poisson(rng.gamma(0.5, 2.0, size=(1, 60)), size=(53, 60)).astype(np.float32)
    dense[7] = 0  # an empty cell stays zero
    totals = dense.sum(axis=1, keepdims=True)
    logged = np.log1p(np.divide(dense * 1e4, totals, out=np.zeros_like(dense), where=totals > 0))
    rows = np.arange(0, 53, 2)
    expected = np.sort(np.argsort(-logged[rows].astype(np.float64).var(axis=0), kind="stable")[:10])
    chosen = highly_variable_genes(sp.csr_matrix(dense), rows, n_top=10, chunk_rows=4)
    np.testing.assert_array_equal(chosen, expected)


def test_pca_embedding_of_rows_equals_embedding_of_the_row_subset():
    from celltosg.build._metacells import pca_embedding

    X = _clustered(n_per=15).X
    rows = np.arange(5, X.shape[0], 3)
    np.testing.assert_allclose(pca_embedding(X, rows=rows, seed=1), pca_embedding(X[rows], seed=1), atol=1e-6)


def test_small_integer_counts_are_summed_without_overflow():
    counts = np.full((4, 3), 200, dtype=np.uint8)
    obs = pd.DataFrame({"donor_id": ["d"] * 4}, index=[f"c{i}" for i in range(4)])
    mc = make_metacells(ad.AnnData(sp.csr_matrix(counts), obs=obs), size=4)
    assert mc.n_obs == 1 and mc.X.toarray().tolist() == [[800, 800, 800]]
    assert np.issubdtype(mc.X.dtype, np.integer)
