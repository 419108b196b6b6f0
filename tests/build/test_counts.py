from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from celltosg.build._counts import counts_from_lognorm, value_type
from celltosg.errors import MalformedInputError


def _lognorm(counts: np.ndarray, target_sum: float = 1e4) -> np.ndarray:
    """Independent log1p(normalize_total) written out by hand."""
    return np.log1p(counts / counts.sum(axis=1, keepdims=True) * target_sum)


def _synthetic_counts(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(n=0.5, p=0.5 / (0.5 + rng.gamma(1.0, 2.0, size=(60, 300))))
    counts[:, 0] = 1  # every cell holds a count of 1
    counts[:5, 0] = 0  # ... except five, whose smallest count is 2 or 3
    counts[:5, 1] = [2, 2, 3, 3, 2]
    counts[:5, 2] = [3, 5, 4, 7, 5]
    return counts.astype(np.float64)


def test_round_trip_recovers_synthetic_counts_exactly():
    counts = _synthetic_counts()
    out = counts_from_lognorm(ad.AnnData(sp.csr_matrix(_lognorm(counts).astype(np.float32))))
    assert sp.issparse(out.X) and out.X.dtype == np.float32
    np.testing.assert_array_equal(out.X.toarray(), counts)


def test_round_trip_survives_values_stored_with_three_decimals():
    counts = _synthetic_counts(1)
    rounded = np.round(_lognorm(counts), 3)  # as in scanpy's pbmc68k_reduced .raw
    out = counts_from_lognorm(ad.AnnData(rounded), target_sum=None)
    assert np.mean(out.X.toarray() == counts) > 0.999


def test_target_sum_is_checked_and_scaled_data_refused():
    counts = _synthetic_counts(2)
    lognorm = _lognorm(counts, target_sum=1e4)
    counts_from_lognorm(ad.AnnData(lognorm), target_sum=1e4)
    with pytest.raises(MalformedInputError, match="target_sum"):
        counts_from_lognorm(ad.AnnData(lognorm[:, :100]), target_sum=1e4)
    scaled = (lognorm - lognorm.mean(0)) / (lognorm.std(0) + 1e-9)
    with pytest.raises(MalformedInputError, match="scaled"):
        counts_from_lognorm(ad.AnnData(scaled))
    with pytest.raises(MalformedInputError, match="not log1p"):
        counts_from_lognorm(ad.AnnData(np.sqrt(lognorm)))


@pytest.mark.slow
def test_round_trip_on_celltypist_real_counts():
    import celltypist
    import pandas as pd

    path = Path(celltypist.__file__).parent / "data" / "samples" / "sample_cell_by_gene.csv"
    stored = pd.read_csv(path, index_col=0).to_numpy(dtype=np.float64)
    assert stored.shape == (559, 32786)
    counts = np.rint(stored)  # the file holds integers up to float noise of 1e-11
    assert np.abs(stored - counts).max() < 1e-6
    lognorm = sp.csr_matrix(_lognorm(counts).astype(np.float32))
    out = counts_from_lognorm(ad.AnnData(lognorm), target_sum=1e4).X.toarray()
    has_one = (counts == 1).any(axis=1)
    assert has_one.mean() > 0.99
    np.testing.assert_array_equal(out[has_one], counts[has_one])


def test_value_type_of_counts_tpm_and_lognorm():
    counts = _synthetic_counts()
    assert value_type(counts.astype(np.float32)) == "counts"
    assert value_type(sp.csr_matrix(counts.astype(np.float32))) == "counts"
    tpm = counts / counts.sum(axis=1, keepdims=True) * 1e6
    assert value_type(sp.csr_matrix(tpm)) == "non_integer"
    assert value_type(_lognorm(counts)) == "non_integer"
    assert value_type(_lognorm(counts), lognorm=True) == "counts_from_lognorm"
