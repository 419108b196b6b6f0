"""Library-size normalisation of meta-cell counts."""

from __future__ import annotations

import numpy as np

from celltosg.store import TARGET_SUM


def library_scale(x: np.ndarray, target_sum: float = TARGET_SUM) -> np.ndarray:
    """float32 (n, 1) factors bringing each row of (n, g) counts to ``target_sum`` (0 for empty rows), from
    float64 row totals."""
    totals = x.sum(axis=1, keepdims=True, dtype=np.float64)
    return np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0).astype(np.float32)


def normalize_log1p_inplace(x: np.ndarray, *, target_sum: float = TARGET_SUM, out: np.ndarray | None = None,
                            scale: np.ndarray | None = None) -> np.ndarray:
    """:func:`normalize_log1p` of float32 (n, g) counts ``x`` written into ``out`` (default: x itself,
    overwritten); returns out. ``scale`` passes :func:`library_scale` when known. No (n, g) temporaries."""
    out = x if out is None else out
    np.multiply(x, library_scale(x, target_sum) if scale is None else scale, out=out)
    return np.log1p(out, out=out)


def normalize_log1p(counts: np.ndarray, *, target_sum: float = TARGET_SUM) -> np.ndarray:
    """Scale each row to ``target_sum`` total counts, then log1p; rows without counts stay zero.

    Parameters
    ----------
    counts
        (n, g) non-negative counts.

    Returns
    -------
    numpy.ndarray
        (n, g) float32, a new array.
    """
    counts = np.asarray(counts, dtype=np.float32)
    return normalize_log1p_inplace(counts, target_sum=target_sum, out=np.empty_like(counts))
