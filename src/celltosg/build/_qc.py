"""Quality control of one input file: drop poor cells and rarely seen genes (scanpy)."""

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
) -> tuple[AnnData, QCReport]:
    """Filter cells and genes of a counts matrix with scanpy.

    Cells with fewer than ``min_genes`` detected genes go first, then cells whose share of counts on
    mitochondrial genes (symbols starting with ``MT-``, case-insensitive) exceeds ``max_mito_fraction``,
    then genes detected in fewer than ``min_cells`` of the remaining cells.

    Parameters
    ----------
    adata
        Cells x genes counts, ``var_names`` are gene symbols (or ``var["gene_symbols"]`` / ``var["feature_name"]``
        hold them).
    where
        Name of the input, used in error messages.

    Returns
    -------
    (filtered copy of ``adata`` with QC metrics in ``obs``, :class:`QCReport`)
    """
    import scanpy as sc

    check_counts(adata, where=where)
    n_cells_in, n_genes_in = adata.shape
    keep = sc.pp.filter_cells(adata, min_genes=min_genes, inplace=False)[0]
    removed_min_genes = int((~keep).sum())
    out = adata[keep].copy()

    out.var["mt"] = _mito_mask(out)
    sc.pp.calculate_qc_metrics(out, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    mito_fraction = out.obs["pct_counts_mt"].to_numpy() / 100.0
    keep = ~(mito_fraction > max_mito_fraction)
    removed_mito = int((~keep).sum())
    out = out[keep].copy()

    gene_keep = sc.pp.filter_genes(out, min_cells=min_cells, inplace=False)[0]
    out = out[:, gene_keep].copy()

    report = QCReport(
        n_cells_in=int(n_cells_in),
        n_cells_out=int(out.n_obs),
        removed_min_genes=removed_min_genes,
        removed_mito=removed_mito,
        n_genes_in=int(n_genes_in),
        n_genes_out=int(out.n_vars),
    )
    logger.info(
        "%s: QC kept %d of %d cells (%d with < %d genes, %d over %.0f%% mitochondrial), %d of %d genes",
        where, report.n_cells_out, n_cells_in, removed_min_genes, min_genes, removed_mito,
        100 * max_mito_fraction, report.n_genes_out, n_genes_in,
    )
    return out, report


def _mito_mask(adata: AnnData) -> np.ndarray:
    """Boolean (n_genes,): genes whose symbol starts with ``MT-``."""
    for column in ("feature_name", "gene_symbols", "gene_symbol", "symbol"):
        if column in adata.var.columns:
            symbols = adata.var[column].astype(str)
            break
    else:
        symbols = adata.var_names.to_series()
    return symbols.str.upper().str.startswith("MT-").to_numpy()
