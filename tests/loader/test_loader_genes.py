"""Gene restriction of a cohort: the most variable training genes, and a checkpoint's gene list."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.errors import QueryError
from celltosg.loader import GeneSubset, most_variable_genes, restrict_genes
from celltosg.train import InMemoryCohort


def _cohort(kg, *, seed: int = 0):
    """Log-like values: genes 3, 7 and 11 vary strongly on train rows; gene 20 varies on test rows only."""
    rng = np.random.default_rng(seed)
    n = 90
    X = np.abs(rng.normal(1.0, 0.05, size=(n, kg.n_rna))).astype(np.float32)
    split = np.array(["train"] * 60 + ["val"] * 15 + ["test"] * 15, dtype=object)
    labels = np.array(["a", "b", "c"] * 30)
    for gene in (3, 7, 11):
        X[:60, gene] = rng.choice([0.0, 4.0], size=60)
    X[75:, 20] = rng.choice([0.0, 6.0], size=15)
    return InMemoryCohort(X, split, kg, labels=labels), X


def test_most_variable_genes_come_from_train_rows(tiny_kg):
    cohort, X = _cohort(tiny_kg)
    subset = most_variable_genes(cohort, 3)
    assert isinstance(subset, GeneSubset)
    assert subset.columns.tolist() == [3, 7, 11]  # gene 20 varies in the test rows only
    np.testing.assert_array_equal(subset.X("test"), X[75:][:, [3, 7, 11]])
    np.testing.assert_array_equal(subset.labels("val"), cohort.labels("val"))
    ids = tiny_kg.nodes["node_id"].to_numpy()
    assert subset.kg.n_rna == 3
    assert subset.kg.nodes["node_id"].tolist()[:3] == [ids[3], ids[7], ids[11]]
    assert subset.obs is cohort.obs and subset.label_mapping == cohort.label_mapping


def test_all_genes_or_zero_keep_the_cohort(tiny_kg):
    cohort, _ = _cohort(tiny_kg)
    assert most_variable_genes(cohort, 0) is cohort
    assert most_variable_genes(cohort, tiny_kg.n_rna) is cohort
    with pytest.raises(QueryError, match="0 \\(all\\) or positive"):
        most_variable_genes(cohort, -1)


def test_restrict_genes_follows_a_checkpoint_list(tiny_kg):
    cohort, X = _cohort(tiny_kg)
    ids = [str(i) for i in tiny_kg.nodes["node_id"].to_numpy()[: tiny_kg.n_rna]]
    assert restrict_genes(cohort, ids) is cohort
    subset = restrict_genes(cohort, [ids[2], ids[5]])
    np.testing.assert_array_equal(subset.X("train"), X[:60][:, [2, 5]])
    with pytest.raises(QueryError, match="lacks 1 of the 2 genes"):
        restrict_genes(cohort, [ids[2], "not-a-node"])
    with pytest.raises(QueryError, match="not in the cohort's gene order"):
        restrict_genes(cohort, [ids[5], ids[2]])


def test_a_store_cohort_is_restricted_by_reading_and_normalising_the_kept_genes(cohort_store, cohort_store_data):
    from celltosg.loader import Cohort, load_cohort, normalize_log1p

    _, counts = cohort_store_data
    cohort = load_cohort(cohort_store, {"tissue_general": "lung"}, task="cell_type")
    train = cohort.positions("train")
    genes = cohort.genes
    reference = normalize_log1p(counts[train][:, genes].astype(np.float32))  # over every measured gene
    expected = np.sort(np.argsort(-reference.astype(np.float64).var(axis=0), kind="stable")[:6])
    subset = most_variable_genes(cohort, 6)
    assert isinstance(subset, Cohort)
    np.testing.assert_array_equal(subset.genes, genes[expected])
    # values are normalised over the kept genes only, as predict normalises new data over the model's genes
    test = cohort.positions("test")
    np.testing.assert_allclose(subset.X("test"), normalize_log1p(counts[test][:, genes[expected]].astype(np.float32)),
                               rtol=1e-6)
    assert subset.kg.n_rna == 6
    assert subset.kg.nodes["node_id"].tolist()[:6] == cohort.kg.nodes["node_id"].to_numpy()[expected].tolist()
    assert cohort.X("test").shape[1] == len(genes)  # the original cohort is untouched
    with pytest.raises(QueryError, match="sorted, distinct"):
        cohort.with_genes(genes[::-1])
