"""Over-representation analysis: one-sided hypergeometric test per gene set, Benjamini-Hochberg FDR.

For a query gene list Q and a background B (the graph's genes measured in the cohort), every term T of
a collection is tested with ``N = |B|``, ``K = |T ∩ B|``, ``n = |Q ∩ B|``, ``k = |Q ∩ T ∩ B|`` and
``p = P(X >= k)`` for ``X ~ Hypergeometric(N, K, n)``. As in clusterProfiler, only terms with
``min_size <= K <= max_size`` and ``k >= 1`` are tested, and q-values are adjusted within each
collection. Symbols are matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError

COLLECTIONS = ("GO_BP", "GO_MF", "GO_CC", "KEGG")
COLUMNS = [
    "collection", "term_id", "term_name", "overlap", "term_size", "query_size", "background_size",
    "expected", "fold_enrichment", "p", "q", "genes",
]  # fmt: skip


def benjamini_hochberg(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same order as ``p``.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ascending order ``p_(1) <= ... <= p_(m)``.
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(monotone, 1.0)
    return q


def enrichment(
    genes: Iterable[str],
    background: Iterable[str],
    genesets: pd.DataFrame,
    *,
    collections: Sequence[str] = COLLECTIONS,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Hypergeometric over-representation of ``genes`` in each gene set, against ``background``.

    Parameters
    ----------
    genes
        Query symbols (for example the core subgraph's genes); those outside the background are ignored.
    background
        Background symbols (the graph's genes measured in the cohort).
    genesets
        Long table with columns ``collection, term_id, term_name, symbol`` (the pack's genesets).
    collections
        Collections to test.
    min_size, max_size
        Bounds on a term's size within the background.

    Returns
    -------
    pd.DataFrame
        One row per tested term, columns :data:`COLUMNS` (``genes`` = ``|``-joined overlapping symbols),
        sorted by collection order then p.
    """
    from scipy.stats import hypergeom

    missing = {"collection", "term_id", "term_name", "symbol"} - set(genesets.columns)
    if missing:
        raise MalformedInputError(
            f"the gene-set table lacks columns {sorted(missing)}; it needs collection, term_id, term_name, "
            "symbol (the pack's genesets.parquet)"
        )
    universe = {str(g).upper() for g in background}
    query = {str(g).upper() for g in genes} & universe
    table = genesets[genesets["collection"].isin(list(collections))]
    codes, symbols = pd.factorize(table["symbol"])  # case-fold each distinct symbol once, not every row
    upper = pd.Index(symbols.astype(str)).str.upper()
    in_universe = np.append(upper.isin(universe), False)  # code -1 (missing symbol) -> last entry, False
    is_hit = np.append(upper.isin(query), False)
    table = pd.DataFrame({
        "collection": table["collection"].to_numpy(), "term_id": table["term_id"].to_numpy(),
        "term_name": table["term_name"].to_numpy(), "symbol": np.append(upper, "")[codes], "hit": is_hit[codes],
    })[in_universe[codes]].drop_duplicates(["collection", "term_id", "symbol"])
    grouped = table.groupby(["collection", "term_id"], sort=False)
    terms = grouped.agg(term_name=("term_name", "first"), term_size=("symbol", "size"), overlap=("hit", "sum"))
    terms["genes"] = table[table["hit"]].groupby(["collection", "term_id"])["symbol"].agg(
        lambda s: "|".join(sorted(s))
    )
    terms = terms[(terms["term_size"] >= min_size) & (terms["term_size"] <= max_size) & (terms["overlap"] >= 1)]
    terms = terms.reset_index()
    n_bg, n_query = len(universe), len(query)
    terms["query_size"] = n_query
    terms["background_size"] = n_bg
    terms["expected"] = terms["term_size"] * n_query / max(n_bg, 1)
    terms["fold_enrichment"] = terms["overlap"] / terms["expected"]
    terms["p"] = hypergeom.sf(terms["overlap"] - 1, n_bg, terms["term_size"], n_query)
    terms["q"] = terms.groupby("collection")["p"].transform(lambda p: benjamini_hochberg(p.to_numpy()))
    rank = {name: i for i, name in enumerate(collections)}
    terms = terms.sort_values(["collection", "p", "term_id"], key=lambda c: c.map(rank) if c.name == "collection" else c)
    return terms[COLUMNS].reset_index(drop=True)
