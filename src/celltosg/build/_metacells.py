"""Meta-cells: sum the counts of groups of similar cells of one donor, dataset and disease state.

Two partitions, both on a PCA of log-normalised values computed per group, restricted to the group's
2,000 most variable genes: the counts stay sparse, only the PCA's fitting cells x those genes are
densified, and the meta-cells sum the full counts sparsely.

``fast``
    Balanced recursive bisection along the leading principal axis down to leaves of at most
    ``16 * size`` cells, then k-means with ``k = round(n_leaf / size)`` inside each leaf. Linear in the
    number of cells (PCA fitted on at most 20,000 cells, every cell projected), so a file of a million
    cells is fine.
``seacells``
    Kernel archetypal analysis as in SEACells (Persad et al., Nat. Biotechnol. 2023), written here in
    numpy/scipy (:mod:`celltosg.build._seacells`): its package pulls jax, palantir and pyranges (about
    300 MB) for a few hundred lines of linear algebra. Cost per iteration grows as cells x meta-cells, so
    it suits groups of up to some tens of thousands of cells.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltosg.errors import CellTOSGError
from celltosg.progress import progress
from celltosg.store import TARGET_SUM

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

METHODS = ("fast", "seacells")
DEFAULT_GROUPBY = ("dataset_id", "donor_id", "disease")
_N_PCS = 30
_N_TOP_GENES = 2000
_MAX_FIT_CELLS = 20_000
_LEAF_METACELLS = 16
_CHUNK_ROWS = 1_000  # rows log-normalised at a time (choosing genes, fitting, projecting)


def make_metacells(
    adata: AnnData,
    *,
    method: str = "fast",
    size: int = 50,
    groupby: Sequence[str] = DEFAULT_GROUPBY,
    seed: int = 0,
) -> AnnData:
    """Aggregate cells into meta-cells of about ``size`` cells that never cross ``groupby`` groups.

    Parameters
    ----------
    adata
        Cells x genes raw counts (``X`` dense or sparse).
    method
        ``"fast"`` or ``"seacells"`` (module docstring).
    size
        Target cells per meta-cell; 1 keeps every cell as its own meta-cell.
    groupby
        obs columns a meta-cell never mixes; absent columns are ignored (one group).
    seed
        Seed of every random step (PCA fit sample, k-means, SEACells initialisation).

    Returns
    -------
    AnnData meta-cells x genes: ``X`` summed counts (CSR); ``obs`` with ``n_raw_cells``, ``raw_cells``
    (``;``-joined obs names), the ``groupby`` columns, ``cell_type_purity`` when ``cell_type`` exists, and
    every other obs column as its majority value (mean for numeric columns); ``var`` as the input.
    """
    import anndata as ad

    if method not in METHODS:
        raise CellTOSGError(f"unknown meta-cell method {method!r}; choose one of {list(METHODS)}.")
    if size < 1:
        raise CellTOSGError(f"meta-cell size must be at least 1, got {size}.")
    X = sp.csr_matrix(adata.X)
    keys = [c for c in groupby if c in adata.obs.columns]
    assign = np.arange(adata.n_obs) if size == 1 else _assign(X, adata.obs, keys, method, size, seed)
    n_meta = int(assign.max()) + 1 if adata.n_obs else 0
    # integer counts stay integers, at least 32-bit so that sums of small types cannot overflow
    dtype = np.result_type(X.dtype, np.int32) if np.issubdtype(X.dtype, np.integer) else np.dtype(np.float32)
    X = X.astype(dtype, copy=False)
    # the indicator has the counts' dtype, so the product never upcasts (copies) the counts
    indicator = sp.csr_matrix((np.ones(adata.n_obs, dtype=dtype), (assign, np.arange(adata.n_obs))),
                              shape=(n_meta, adata.n_obs))
    summed = (indicator @ X).tocsr()
    obs = _aggregate_obs(adata.obs, assign, n_meta, keys)
    logger.info("meta-cells (%s, size %d): %d cells -> %d meta-cells", method, size, adata.n_obs, n_meta)
    return ad.AnnData(summed.astype(dtype, copy=False), obs=obs, var=adata.var.copy())


def _assign(X: sp.csr_matrix, obs: pd.DataFrame, keys: list[str], method: str, size: int, seed: int) -> np.ndarray:
    """Meta-cell index per cell (n_cells,), numbered group by group in order of first member."""
    from threadpoolctl import threadpool_limits

    if keys:
        group = obs.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    else:
        group = np.zeros(len(obs), dtype=np.int64)
    members = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[members])) + 1
    assign = np.empty(len(obs), dtype=np.int64)
    offset = 0
    groups = np.split(members, bounds) if len(members) else []
    for cells in progress(groups, description=f"meta-cells ({method})"):
        # one BLAS / OpenMP thread: a build runs one input per worker process, one worker per core
        with threadpool_limits(1):
            local = _partition(X, cells, method, size, seed)
        _, first, rank = np.unique(local, return_index=True, return_inverse=True)
        order = np.empty(len(first), dtype=np.int64)
        order[np.argsort(first)] = np.arange(len(first))
        assign[cells] = offset + order[rank]
        offset += len(first)
    return assign


def _partition(X: sp.csr_matrix, cells: np.ndarray, method: str, size: int, seed: int) -> np.ndarray:
    """Cluster label per cell of one group, the rows ``cells`` of ``X`` (len(cells),)."""
    n = len(cells)
    k = max(1, round(n / size))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if k >= n:
        return np.arange(n)
    Z = pca_embedding(X, rows=cells, seed=seed)
    if method == "fast":
        return _bisect_then_kmeans(Z, size, seed)
    from celltosg.build._seacells import seacells_labels

    return seacells_labels(Z, k, seed=seed)


def _row_scale(X: sp.csr_matrix, target_sum: float) -> np.ndarray:
    """``target_sum / total counts`` per row (n_rows,), 0 for empty rows."""
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    return np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)


def _log_scaled(X: sp.csr_matrix, scale: np.ndarray) -> sp.csr_matrix:
    """log1p(row ``i`` of ``X`` x ``scale[i]``) as a new CSR float32 matrix of the same shape."""
    from sklearn.utils.sparsefuncs import inplace_row_scale

    out = sp.csr_matrix(X, dtype=np.float32, copy=True)
    inplace_row_scale(out, scale.astype(np.float32))
    np.log1p(out.data, out=out.data)
    return out


def log_normalize(X: sp.csr_matrix, target_sum: float = TARGET_SUM) -> sp.csr_matrix:
    """log1p(counts / cell total * target_sum), CSR float32 (cells x genes); empty cells stay zero."""
    X = sp.csr_matrix(X)
    return _log_scaled(X, _row_scale(X, target_sum))


def highly_variable_genes(X: sp.csr_matrix, rows: np.ndarray, n_top: int = _N_TOP_GENES,
                          chunk_rows: int = _CHUNK_ROWS) -> np.ndarray:
    """Sorted column indices (<= n_top,) of the genes whose log-normalised values vary most over ``rows``.

    Rows are log-normalised ``chunk_rows`` at a time, so memory stays at one chunk whatever their
    number; ties keep the lower column.
    """
    from sklearn.utils.sparsefuncs import incr_mean_variance_axis

    n_genes = X.shape[1]
    mean, var, seen = np.zeros(n_genes), np.zeros(n_genes), 0.0
    for start in range(0, len(rows), chunk_rows):
        counts = X[rows[start:start + chunk_rows]]
        chunk = _log_scaled(counts, _row_scale(counts, TARGET_SUM))
        mean, var, seen = incr_mean_variance_axis(sp.csr_matrix(chunk, dtype=np.float64), axis=0, last_mean=mean,
                                                  last_var=var, last_n=seen)
    return np.sort(np.argsort(-var, kind="stable")[:n_top])


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` cut into consecutive pieces of at most ``_CHUNK_ROWS``."""
    return np.array_split(rows, max(1, -(-len(rows) // _CHUNK_ROWS)))


def _log_genes(X: sp.csr_matrix, rows: np.ndarray, genes: np.ndarray) -> sp.csr_matrix:
    """Log-normalised values (by each cell's total over all genes) of ``rows`` x ``genes``, CSR float32."""
    counts = X[rows]
    return _log_scaled(counts[:, genes], _row_scale(counts, TARGET_SUM))


def pca_embedding(X: sp.csr_matrix, *, rows: np.ndarray | None = None, n_pcs: int = _N_PCS,
                  seed: int = 0) -> np.ndarray:
    """PCA of log-normalised counts on the most variable genes, float64 (n_rows, <= n_pcs).

    ``rows`` picks the cells (default: all rows of ``X``). Genes are chosen and the PCA fitted on at most
    20,000 cells drawn with ``seed``; every cell is projected. Memory beyond ``X``: the fitting cells'
    highly variable genes as one dense float32 array (at most 20,000 x 2,000) plus one chunk of
    1,000 cells at a time; the other values are never normalised all at once nor densified.
    """
    from sklearn.decomposition import PCA

    X = sp.csr_matrix(X)
    rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
    n = len(rows)
    rng = np.random.default_rng(seed)
    fit = rows[np.sort(rng.choice(n, _MAX_FIT_CELLS, replace=False))] if n > _MAX_FIT_CELLS else rows
    genes = highly_variable_genes(X, fit)
    dense = np.empty((len(fit), len(genes)), dtype=np.float32)
    for chunk in _chunks(np.arange(len(fit))):
        dense[chunk] = _log_genes(X, fit[chunk], genes).toarray()
    n_components = max(1, min(n_pcs, dense.shape[0] - 1, len(genes)))
    pca = PCA(n_components=n_components, svd_solver="full" if dense.shape[0] <= 2000 else "randomized",
              random_state=seed, copy=False).fit(dense)  # centres ``dense`` in place: no second copy
    del dense
    offset = pca.mean_ @ pca.components_.T
    return np.vstack([np.asarray(_log_genes(X, chunk, genes) @ pca.components_.T) - offset
                      for chunk in _chunks(rows)])


def _bisect_then_kmeans(Z: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Labels (n,) from median splits on the leading axis down to small leaves, then k-means per leaf."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    labels = np.empty(len(Z), dtype=np.int64)
    stack, next_label = [np.arange(len(Z))], 0
    leaf_cells = _LEAF_METACELLS * size
    while stack:
        cells = stack.pop()
        if len(cells) > leaf_cells:
            centred = Z[cells] - Z[cells].mean(axis=0)
            axis = np.linalg.eigh(centred.T @ centred)[1][:, -1]  # leading principal axis
            order = np.argsort(centred @ axis, kind="stable")
            half = len(cells) // 2
            stack.extend([cells[order[half:]], cells[order[:half]]])
            continue
        k = min(len(cells), max(1, round(len(cells) / size)))
        if k == 1:
            local = np.zeros(len(cells), dtype=np.int64)
        else:
            with threadpool_limits(1):  # small problems: thread start-up costs more than it saves
                local = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(Z[cells])
        labels[cells] = next_label + local
        next_label += k
    return labels


def _aggregate_obs(obs: pd.DataFrame, assign: np.ndarray, n_meta: int, keys: list[str]) -> pd.DataFrame:
    """Meta-cell obs (n_meta rows): sizes, member names, group keys, purity and majority / mean values."""
    sizes = np.bincount(assign, minlength=n_meta)
    order = np.argsort(assign, kind="stable")
    names = obs.index.to_numpy().astype(str)[order]
    split = np.split(names, np.cumsum(sizes)[:-1]) if n_meta else []
    first = order[np.concatenate([[0], np.cumsum(sizes)[:-1]])] if n_meta else np.zeros(0, dtype=np.int64)
    columns: dict[str, object] = {
        "n_raw_cells": sizes.astype(np.int64),
        "raw_cells": [";".join(chunk) for chunk in split],
    }
    for column in obs.columns:
        values = obs[column]
        if column in keys:
            columns[column] = values.iloc[first].to_numpy()
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(dtype=np.float64)
            finite = np.isfinite(numbers)
            total = np.bincount(assign[finite], weights=numbers[finite], minlength=n_meta)
            count = np.bincount(assign[finite], minlength=n_meta)
            columns[column] = np.divide(total, count, out=np.full(n_meta, np.nan), where=count > 0)
        else:
            majority, share = _majority(values, assign, n_meta)
            columns[column] = majority
            if column == "cell_type":
                columns["cell_type_purity"] = share
    out = pd.DataFrame(columns, index=pd.Index([f"metacell_{i}" for i in range(n_meta)]))
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            out[column] = pd.Categorical(out[column], categories=obs[column].cat.categories)
    return out


def _majority(values: pd.Series, assign: np.ndarray, n_meta: int) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent value per meta-cell (ties: first seen) and its share, both (n_meta,)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    table = sp.csr_matrix((np.ones(len(codes)), (assign, codes)), shape=(n_meta, max(len(uniques), 1)))
    table.sum_duplicates()
    winner = np.asarray(table.argmax(axis=1)).ravel()
    top = np.asarray(table.max(axis=1).todense()).ravel()
    sizes = np.bincount(assign, minlength=n_meta)
    return np.asarray(uniques, dtype=object)[winner], top / np.maximum(sizes, 1)


def metacell_quality(adata_raw: AnnData, metacells: AnnData, label_key: str = "cell_type") -> dict[str, float]:
    """Quality of a meta-cell partition of ``adata_raw`` (counts).

    Returns
    -------
    dict with ``purity`` (mean over meta-cells of the share of their majority ``label_key``; higher is
    better), ``within_variance`` (share of the total variance of log-normalised expression left inside
    meta-cells, summed over genes; 0 for single cells, 1 for one meta-cell; lower is better),
    ``compactness`` (mean over meta-cells of 2+ cells of their per-component variance on the 30-PC
    embedding, relative to the variance of all cells; lower is better), ``n_metacells``, ``mean_size``.
    """
    position = pd.Series(np.arange(adata_raw.n_obs), index=adata_raw.obs_names.astype(str))
    members = metacells.obs["raw_cells"].astype(str).str.split(";")
    sizes = members.str.len().to_numpy()
    cells = position.loc[np.concatenate(members.to_numpy())].to_numpy()
    assign = np.repeat(np.arange(metacells.n_obs), sizes)
    labels = adata_raw.obs[label_key].to_numpy()[cells]
    purity = float(np.mean(_majority(pd.Series(labels), assign, metacells.n_obs)[1]))

    X = sp.csr_matrix(adata_raw.X)[cells]
    L = log_normalize(X)
    within = _within_share(L, assign, metacells.n_obs)
    Z = pca_embedding(X, seed=0)
    counts = np.bincount(assign, minlength=metacells.n_obs)
    means = np.stack([np.bincount(assign, weights=z, minlength=metacells.n_obs) for z in Z.T], 1) / counts[:, None]
    squares = np.bincount(assign, weights=((Z - means[assign]) ** 2).mean(axis=1), minlength=metacells.n_obs)
    several = counts > 1
    compact = 0.0
    if several.any():
        spread = float(np.mean(squares[several] / (counts[several] - 1)))
        compact = spread / float(Z.var(axis=0, ddof=1).mean())
    return {
        "purity": purity,
        "within_variance": within,
        "compactness": compact,
        "n_metacells": int(metacells.n_obs),
        "mean_size": float(sizes.mean()),
    }


def _within_share(L: sp.csr_matrix, assign: np.ndarray, n_meta: int) -> float:
    """Within-group sum of squares over total sum of squares of the rows of ``L`` (all genes)."""
    counts = np.bincount(assign, minlength=n_meta).astype(np.float64)
    indicator = sp.csr_matrix((np.ones(len(assign)), (assign, np.arange(len(assign)))), shape=(n_meta, len(assign)))
    group_sums = sp.csr_matrix(indicator @ L)
    squares = float(L.multiply(L).sum())
    between = float((sp.diags(1.0 / counts) @ group_sums.multiply(group_sums)).sum())
    grand = np.asarray(L.sum(axis=0), dtype=np.float64).ravel()
    total = squares - float(grand @ grand) / L.shape[0]
    return max(squares - between, 0.0) / total if total > 0 else 0.0
