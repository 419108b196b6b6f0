from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltosg.build._qc import QCReport, run_qc
from celltosg.errors import MalformedInputError


def _toy() -> ad.AnnData:
    """6 cells x 8 genes (2 mitochondrial); per-cell detected genes and mito share chosen by hand."""
    genes = ["MT-CO1", "MT-ND1", "A", "B", "C", "D", "E", "RARE"]
    X = np.array(
        [
            [1, 0, 5, 5, 5, 5, 0, 0],  # 5 genes, mito 1/21
            [0, 0, 1, 1, 1, 1, 1, 0],  # 5 genes, mito 0
            [9, 9, 1, 1, 1, 0, 0, 0],  # 5 genes, mito 18/21 -> removed by mito
            [0, 0, 3, 0, 0, 0, 0, 1],  # 2 genes -> removed by min_genes (RARE only seen here)
            [2, 0, 2, 2, 2, 2, 0, 0],  # 5 genes, mito 2/10 = 0.2 exactly -> kept (not above)
            [0, 0, 2, 2, 2, 2, 2, 0],  # 5 genes
        ],
        dtype=np.float32,
    )
    return ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f"c{i}" for i in range(6)]),
                      var=pd.DataFrame(index=genes))


def test_run_qc_counts_removed_cells_and_genes_by_hand():
    adata = _toy()
    out, report = run_qc(adata, min_genes=3, min_cells=2, max_mito_fraction=0.2)
    assert adata.shape == (6, 8) and adata.obs.columns.empty and adata.var.columns.empty  # input untouched
    assert list(out.obs_names) == ["c0", "c1", "c4", "c5"]
    # In the 4 kept cells: MT-CO1 seen in 2 cells, MT-ND1 in 0, E in 2, RARE in 0.
    assert list(out.var_names) == ["MT-CO1", "A", "B", "C", "D", "E"]
    assert report == QCReport(n_cells_in=6, n_cells_out=4, removed_min_genes=1, removed_mito=1,
                              n_genes_in=8, n_genes_out=6)
    assert report.as_dict()["removed_mito"] == 1
    np.testing.assert_allclose(out.obs["pct_counts_mt"].to_numpy(), [100 / 21, 0, 20, 0], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_run_qc_rejects_non_counts_naming_the_cell(bad):
    adata = _toy()
    X = adata.X.toarray()
    X[4, 2] = bad
    adata.X = sp.csr_matrix(X)
    with pytest.raises(MalformedInputError, match=r"donor7\.h5ad.*c4"):
        run_qc(adata, where="donor7.h5ad")
    adata.X = X
    with pytest.raises(MalformedInputError, match="c4"):
        run_qc(adata)


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize("all_columns", [True, False])
def test_subset_csr_equals_dense_indexing(copy, all_columns):
    from celltosg.build._qc import subset_csr

    rng = np.random.default_rng(0)
    dense = rng.poisson(0.7, size=(30, 17)).astype(np.float32)
    dense[4] = 0  # an empty row, kept
    rows, columns = rng.random(30) < 0.8, rng.random(17) < 0.8
    rows[4], columns[3] = True, False
    if all_columns:
        columns[:] = True
    X = sp.csr_matrix(dense)
    out = subset_csr(X, rows, columns, chunk=5, copy=copy)
    np.testing.assert_array_equal(out.toarray(), dense[rows][:, columns])
    assert out.shape == (rows.sum(), columns.sum()) and out.has_sorted_indices
    # in place: the input's buffer, no second copy (scipy copies a view that keeps under half its base)
    assert np.shares_memory(out.data, X.data) is not copy


def test_run_qc_in_place_gives_the_same_result():
    kept, _ = run_qc(_toy(), min_genes=3, min_cells=2, max_mito_fraction=0.2)
    source = _toy()
    in_place, _ = run_qc(source, min_genes=3, min_cells=2, max_mito_fraction=0.2, copy=False)
    np.testing.assert_array_equal(in_place.X.toarray(), kept.X.toarray())
    assert in_place.obs.equals(kept.obs) and in_place.var.equals(kept.var)


def test_stored_zeros_are_not_detected_genes():
    X = sp.csr_matrix((np.array([1.0, 0.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 1, 2]), np.array([0, 2, 5])),
                      shape=(2, 3))
    adata = ad.AnnData(X, obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["G0", "G1", "G2"]))
    out, report = run_qc(adata, min_genes=2, min_cells=1, max_mito_fraction=1.0)
    assert list(out.obs_names) == ["b"] and report.removed_min_genes == 1
    assert out.obs["n_genes_by_counts"].tolist() == [3]
