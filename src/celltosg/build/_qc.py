"""Quality control of one input file: drop poor cells and rarely seen genes (scanpy's rules, on the sparse counts)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from celltosg.errors import MalformedInputError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_CHUNK = 1 << 22  # stored values handled at a time by the chunked loops


@dataclass(frozen=True)
class QCReport:
    """Counts of cells and genes before and after QC for one input."""

    n_cells_in: int
    n_cells_out: int
    removed_min_genes: int
    removed_mito: int
    n_genes_in: int
    n_genes_out: int

    def as_dict(self) -> dict[str, int]:
        """The report as a plain JSON-ready dict."""
        return asdict(self)


def check_counts(adata: AnnData, *, where: str = "input") -> None:
    """Raise :class:`MalformedInputError` unless ``adata.X`` holds finite, non-negative numbers.

    Parameters
    ----------
    adata
        Cells x genes, ``X`` dense or sparse.
    where
        Name of the file (or other origin) put in the error message.
    """
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X)
    if values.size == 0:
        return
    finite = np.isfinite(values)
    if finite.all() and values.min() >= 0:
        return
    if sp.issparse(X):
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.tocsr().indptr))
        bad_rows = np.unique(rows[~finite | (np.nan_to_num(values, nan=-1.0) < 0)])
    else:
        bad_rows = np.flatnonzero((~finite | (np.nan_to_num(values, nan=-1.0) < 0)).any(axis=1))
    names = ", ".join(map(str, adata.obs_names[bad_rows[:5]]))
    kind = "NaN or infinite" if not finite.all() else "negative"
    raise MalformedInputError(
        f"{where}: {len(bad_rows)} cells hold {kind} expression values (first: {names}); "
        "celltosg needs raw counts (non-negative, finite). Point the build at the counts layer "
        "(`--layer`/`raw`), or pass log-normalised input with the explicit log-normalised flag."
    )


def run_qc(
    adata: AnnData,
    *,
    min_genes: int = 200,
    min_cells: int = 3,
    max_mito_fraction: float = 0.2,
    where: str = "input",
    copy: bool = True,
) -> tuple[AnnData, QCReport]:
    """Filter cells and genes of a counts matrix (scanpy's rules, computed on the sparse matrix).

    Cells with fewer than ``min_genes`` detected genes go first, then cells whose share of counts on
    mitochondrial genes (symbols starting with ``MT-``, case-insensitive) exceeds ``max_mito_fraction``,
    then genes detected in fewer than ``min_cells`` of the remaining cells. The kept counts are copied
    once (cells and genes together), so memory peaks near twice the input, never at a dense copy; with
    ``copy=False`` they are compacted inside the input's own buffers instead (no second copy, and the
    input's ``X`` is destroyed: for a caller that drops the input, as the build does).

    Parameters
    ----------
    adata
        Cells x genes counts, ``var_names`` are gene symbols (or ``var["gene_symbols"]`` / ``var["feature_name"]``
        hold them).
    where
        Name of the input, used in error messages.
    copy
        False to reuse (and overwrite) the input's CSR buffers; a non-CSR ``X`` is converted first either way.

    Returns
    -------
    (filtered copy of ``adata`` with ``X`` CSR and the QC metrics of ``scanpy.pp.calculate_qc_metrics`` in
    ``obs``: ``n_genes_by_counts``, ``total_counts``, ``total_counts_mt``, ``pct_counts_mt``; :class:`QCReport`)
    """
    import anndata as ad

    check_counts(adata, where=where)
    X = adata.X if isinstance(adata.X, sp.csr_matrix) else sp.csr_matrix(adata.X)
    n_cells_in, n_genes_in = X.shape
    positive = X.data > 0
    n_genes = np.diff(X.indptr) - _per_row(X.indptr, np.flatnonzero(~positive))  # stored zeros are not detected
    enough_genes = n_genes >= min_genes
    mt = _mito_mask(adata)
    totals = np.asarray(X.sum(axis=1), dtype=X.dtype).ravel()
    mito = np.asarray(X @ mt.astype(X.dtype), dtype=X.dtype).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_mt = (mito / totals * 100).astype(X.dtype)
    low_mito = ~(pct_mt / 100 > max_mito_fraction)
    keep = enough_genes & low_mito
    in_kept_cell = np.repeat(keep, np.diff(X.indptr))
    positive &= in_kept_cell
    cells_per_gene = _per_column(X.indices, positive, n_genes_in)
    del positive
    gene_keep = cells_per_gene >= min_cells
    obs = adata.obs.loc[keep].copy()
    obs["n_genes_by_counts"] = n_genes[keep].astype(np.int32)
    obs["total_counts"], obs["total_counts_mt"], obs["pct_counts_mt"] = totals[keep], mito[keep], pct_mt[keep]
    var = adata.var.loc[gene_keep].copy()
    var["mt"], var["n_cells_by_counts"] = mt[gene_keep], cells_per_gene[gene_keep]
    out = ad.AnnData(subset_csr(X, keep, gene_keep, in_kept_cell, copy=copy), obs=obs, var=var)
    report = QCReport(
        n_cells_in=int(n_cells_in),
        n_cells_out=int(out.n_obs),
        removed_min_genes=int((~enough_genes).sum()),
        removed_mito=int((enough_genes & ~low_mito).sum()),
        n_genes_in=int(n_genes_in),
        n_genes_out=int(out.n_vars),
    )
    logger.info(
        "%s: QC kept %d of %d cells (%d with < %d genes, %d over %.0f%% mitochondrial), %d of %d genes",
        where, report.n_cells_out, n_cells_in, report.removed_min_genes, min_genes, report.removed_mito,
        100 * max_mito_fraction, report.n_genes_out, n_genes_in,
    )
    return out, report


def _per_row(indptr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """How many of the stored-value ``positions`` (k,) fall in each CSR row (n_rows,), int64."""
    rows = np.searchsorted(indptr, positions, side="right") - 1
    return np.bincount(rows, minlength=len(indptr) - 1)


def _per_column(indices: np.ndarray, mask: np.ndarray, n_columns: int, chunk: int = _CHUNK) -> np.ndarray:
    """How many stored values with ``mask`` (nnz,) each column has (n_columns,), counted a chunk at a time."""
    counts = np.zeros(n_columns, dtype=np.int64)
    for start in range(0, len(indices), chunk):
        counts += np.bincount(indices[start:start + chunk][mask[start:start + chunk]], minlength=n_columns)
    return counts


def subset_csr(X: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray, in_rows: np.ndarray | None = None,
               chunk: int = _CHUNK, copy: bool = True) -> sp.csr_matrix:
    """``X[rows][:, columns]`` for boolean masks, built in one pass with no intermediate matrix.

    ``in_rows`` (nnz,) may pass ``rows`` repeated per stored value when the caller has it already.
    Temporary memory: a few booleans per stored value plus 8 bytes per value in a dropped column. With
    ``copy=False`` the kept values are moved to the front of ``X.data`` / ``X.indices`` a chunk at a time
    and the result is a view of them (``X`` is destroyed; no second copy of the kept values, except that
    scipy copies a view that keeps under half of its buffer, so the peak stays under 1.5x the input).
    """
    if in_rows is None:
        in_rows = np.repeat(rows, np.diff(X.indptr))
    per_row = np.diff(X.indptr).astype(np.int64)
    take = in_rows
    if not columns.all():
        in_columns = columns[X.indices]
        per_row -= _per_row(X.indptr, np.flatnonzero(~in_columns))
        take = in_rows & in_columns
        del in_columns
    data, indices = (X.data[take], X.indices[take]) if copy else _compact(X, take, chunk)
    del take
    if not columns.all():
        new_column = (np.cumsum(columns) - 1).astype(indices.dtype)
        for start in range(0, len(indices), chunk):  # renumber in place, a chunk at a time
            indices[start:start + chunk] = new_column[indices[start:start + chunk]]
    indptr = np.zeros(int(rows.sum()) + 1, dtype=np.int64)
    np.cumsum(per_row[rows], out=indptr[1:])
    return sp.csr_matrix((data, indices, indptr), shape=(int(rows.sum()), int(columns.sum())))


def _compact(X: sp.csr_matrix, take: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the stored values with ``take`` (nnz,) to the front of ``X.data`` / ``X.indices``, in order,
    and return views of them; each chunk is copied out before its slots are overwritten."""
    kept = 0
    for start in range(0, len(take), chunk):
        mask = take[start:start + chunk]
        values, columns = X.data[start:start + chunk][mask], X.indices[start:start + chunk][mask]
        X.data[kept:kept + len(values)], X.indices[kept:kept + len(values)] = values, columns
        kept += len(values)
    return X.data[:kept], X.indices[:kept]


def _mito_mask(adata: AnnData) -> np.ndarray:
    """Boolean (n_genes,): genes whose symbol starts with ``MT-``."""
    for column in ("feature_name", "gene_symbols", "gene_symbol", "symbol"):
        if column in adata.var.columns:
            symbols = adata.var[column].astype(str)
            break
    else:
        symbols = adata.var_names.to_series()
    return symbols.str.upper().str.startswith("MT-").to_numpy()
