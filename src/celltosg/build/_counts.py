"""Turn log-normalised expression back into counts-like values.

Log-normalised data is ``log1p(count / library_size * target_sum)`` per cell (scanpy's
``normalize_total`` then ``log1p``). After ``expm1`` every value of a cell is an integer count times one
per-cell *unit* ``target_sum / library_size``. The library size itself is gone (every cell sums to
``target_sum``), so it cannot be estimated from the row sums; but counts are integers and almost every
cell has a gene seen exactly once, so the smallest nonzero value of a cell is its unit. We:

1. ``y = expm1(x)``;
2. take the unit ``u0`` = smallest nonzero ``y`` of the cell, round ``y / u0``;
3. refine the unit as ``sum(y) / sum(rounded)`` (averages out the rounding of stored log values; public
   data such as scanpy's PBMC 68k keeps only 3 decimals), round ``y / u`` again, nonzero stays >= 1;
4. a cell whose ``y / u`` is still far from integers has no count of 1: steps 2-3 are retried with its
   smallest value taken as a count of 2, 3 or 4, keeping the first that lands on integers.

The result is exact for cells holding a count of 1 to 4 whose values are not all multiples of a larger
number, and a uniform rescale of the cell otherwise. Input that was scaled, regressed or batch-corrected is not a grid of integer
multiples; it is detected (the values are far from integers) and refused.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from celltosg.errors import MalformedInputError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

# Mean distance of y / unit from the nearest integer above which input is not log1p(scaled counts).
_MAX_MEAN_RESIDUAL = 0.1
# A cell whose values sit this close to integers has the right unit; else its smallest count is 2, 3, ...
_CELL_RESIDUAL = 0.05
_MAX_SMALLEST_COUNT = 4
# Values a build's store can hold (``value_type`` of a manifest input record and of ``store info``).
VALUE_TYPES = ("counts", "counts_from_lognorm", "non_integer")
_CHUNK = 1 << 22


def value_type(X, *, lognorm: bool = False, where: str = "input") -> str:
    """What a build's input values are, once read: one of :data:`VALUE_TYPES`.

    ``counts_from_lognorm`` when ``lognorm`` (the values were turned back into counts), ``counts`` when
    every value of X (n_cells, n_genes) is an integer, ``non_integer`` otherwise (TPM, FPKM, or log values
    without ``--lognorm``: no flag turns them into counts; they are summed per meta-cell as given).
    """
    if lognorm:
        return "counts_from_lognorm"
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if all(np.array_equal(block, np.round(block)) for block in
           (values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK))):
        return "counts"
    logger.warning("%s: X holds non-integer values (TPM, FPKM or log values?). They are summed per meta-cell "
                   "as given, not counts; pass --lognorm for log1p(normalize_total) values, or --layer / "
                   "--use-raw to read raw counts", where)
    return "non_integer"


def counts_from_lognorm(adata: AnnData, *, target_sum: float | None = None, where: str = "input") -> AnnData:
    """Counts-like values from log1p(normalize_total) expression.

    Parameters
    ----------
    adata
        Cells x genes, ``X`` (dense or sparse) log-normalised.
    target_sum
        The ``normalize_total`` target when known. Then ``expm1(X)`` must sum to it per cell (true when no
        gene was dropped after normalising); a mismatch raises. It is a check only: the unit of each cell
        comes from its smallest value (module docstring).
    where
        Name of the input, used in error messages.

    Returns
    -------
    Copy of ``adata`` whose ``X`` is float32 CSR (cells x genes) of non-negative integers.
    """
    X = sp.csr_matrix(adata.X, dtype=np.float64, copy=True)
    X.eliminate_zeros()
    if X.nnz and (not np.isfinite(X.data).all() or X.data.min() < 0):
        raise MalformedInputError(
            f"{where}: log-normalised values must be finite and non-negative; this looks like scaled data "
            "(for example scanpy's `.X` after `sc.pp.scale`). Use the log-normalised layer (often `.raw`)."
        )
    X.data = np.expm1(X.data)
    if target_sum is not None:
        sums = np.asarray(X.sum(axis=1)).ravel()
        off = np.flatnonzero(~np.isclose(sums, target_sum, rtol=1e-2) & (sums > 0))
        if off.size:
            raise MalformedInputError(
                f"{where}: {off.size} cells of expm1(X) do not sum to target_sum={target_sum:g} "
                f"(cell {adata.obs_names[off[0]]} sums to {sums[off[0]]:.4g}); genes were probably removed "
                "after normalising. Leave target_sum unset."
            )
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    scaled = _scaled_to_counts(X, rows)
    counts = np.maximum(np.rint(scaled), 1.0)
    residual = float(np.abs(scaled - counts).mean()) if X.nnz else 0.0
    if residual > _MAX_MEAN_RESIDUAL:
        raise MalformedInputError(
            f"{where}: expm1 of the values is not a per-cell multiple of integers (mean distance "
            f"{residual:.2f} from the nearest count); the input is not log1p(normalize_total(counts)). "
            "Give raw counts instead, or the untransformed log-normalised layer."
        )
    logger.info("%s: recovered counts from log-normalised values (mean rounding residual %.4f)", where, residual)
    X.data = counts
    out = adata.copy()
    out.X = X.astype(np.float32)
    return out


def _scaled_to_counts(X: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Stored values of ``X`` (expm1 of the input) divided by their cell's unit, shape (nnz,)."""
    n = X.shape[0]
    smallest = _row_min_nonzero(X)
    sums = np.asarray(X.sum(axis=1)).ravel()
    n_stored = np.maximum(np.diff(X.indptr), 1)
    candidates, residuals = [], []
    for smallest_count in range(1, _MAX_SMALLEST_COUNT + 1):
        first = np.rint(X.data * smallest_count / smallest[rows])
        unit = sums / np.maximum(np.bincount(rows, weights=first, minlength=n), 1.0)
        scaled = X.data / unit[rows]
        candidates.append(scaled)
        residuals.append(np.bincount(rows, weights=np.abs(scaled - np.rint(scaled)), minlength=n) / n_stored)
    residuals = np.stack(residuals)  # (_MAX_SMALLEST_COUNT, n_cells)
    passing = residuals <= _CELL_RESIDUAL
    choice = np.where(passing.any(axis=0), passing.argmax(axis=0), residuals.argmin(axis=0))
    return np.choose(choice[rows], candidates)


def _row_min_nonzero(X: sp.csr_matrix) -> np.ndarray:
    """Smallest stored value per row, shape (n_rows,); inf for empty rows."""
    out = np.full(X.shape[0], np.inf)
    nonempty = np.diff(X.indptr) > 0
    out[nonempty] = np.minimum.reduceat(X.data, X.indptr[:-1][nonempty])
    return out
