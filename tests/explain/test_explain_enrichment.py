"""Enrichment arithmetic against the hypergeometric law written out by hand, and BH by hand."""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy.stats import hypergeom

from celltosg.explain import benjamini_hochberg, enrichment


def _upper_tail(k: int, N: int, K: int, n: int) -> float:
    """P(X >= k), X ~ Hypergeometric: sum of C(K, i) C(N-K, n-i) / C(N, n)."""
    return sum(comb(K, i) * comb(N - K, n - i) for i in range(k, min(K, n) + 1)) / comb(N, n)


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04, 0.5 -> m p / rank = .025, .025, .05, .05, .5 (already monotone)
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.5]),
                               [0.025, 0.05, 0.05, 0.025, 0.5])
    # the step-up minimum matters: 3*0.04/1 = 0.12 > 3*0.041/2 = 0.0615
    np.testing.assert_allclose(benjamini_hochberg([0.04, 0.041, 0.9]), [0.0615, 0.0615, 0.9])
    assert benjamini_hochberg([0.6, 0.9])[1] == 0.9 and benjamini_hochberg([1.0, 1.0]).max() == 1.0
    assert benjamini_hochberg([]).size == 0


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(size=200) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_enrichment_against_hand_computed_hypergeometric():
    background = [f"G{i}" for i in range(20)]
    genesets = pd.DataFrame(
        [("GO_BP", "T1", "term one", g) for g in ["G0", "G1", "G2", "G3", "G4", "G5", "OUTSIDE"]]
        + [("GO_BP", "T2", "term two", g) for g in ["G10", "G11", "G12", "G13", "G14", "G0"]]
        + [("GO_BP", "T3", "no overlap", g) for g in ["G15", "G16", "G17", "G18", "G19"]]
        + [("GO_BP", "TINY", "too small", g) for g in ["G0", "G1"]]
        + [("KEGG", "K1", "pathway", g) for g in ["G0", "G1", "G2", "G6", "G7", "G8"]],
        columns=["collection", "term_id", "term_name", "symbol"])
    genes = ["g0", "G1", "G2", "G10", "G9", "NOT_MEASURED"]  # case-insensitive; the last is outside
    table = enrichment(genes, background, genesets, min_size=5)
    by_id = table.set_index("term_id")
    assert set(by_id.index) == {"T1", "T2", "K1"}  # T3 has no overlap, TINY is below min_size
    t1 = by_id.loc["T1"]
    assert (t1.overlap, t1.term_size, t1.query_size, t1.background_size) == (3, 6, 5, 20)
    assert t1.genes == "G0|G1|G2" and t1.term_name == "term one"
    assert t1.p == pytest.approx(_upper_tail(3, 20, 6, 5), rel=1e-12)
    assert t1.p == pytest.approx(hypergeom.sf(2, 20, 6, 5), rel=1e-12)
    assert t1.fold_enrichment == pytest.approx(3 / (6 * 5 / 20))
    t2 = by_id.loc["T2"]
    assert (t2.overlap, t2.term_size) == (2, 6)
    assert t2.p == pytest.approx(_upper_tail(2, 20, 6, 5), rel=1e-12)
    # BH within a collection: GO_BP has two tested terms
    p1, p2 = _upper_tail(3, 20, 6, 5), _upper_tail(2, 20, 6, 5)
    assert t1.q == pytest.approx(min(2 * p1, p2 * 2 / 2)) and t2.q == pytest.approx(2 * p2 / 2)
    k1 = by_id.loc["K1"]
    assert k1.q == pytest.approx(k1.p) == pytest.approx(_upper_tail(3, 20, 6, 5))
    assert list(table["collection"]) == ["GO_BP", "GO_BP", "KEGG"]
    assert list(table["term_id"][:2]) == ["T1", "T2"]  # sorted by p within a collection


def test_enrichment_with_no_overlap_is_an_empty_table():
    genesets = pd.DataFrame([("GO_BP", "T", "t", "A")], columns=["collection", "term_id", "term_name", "symbol"])
    table = enrichment(["B"], ["A", "B"], genesets, min_size=1)
    assert table.empty and "q" in table.columns
