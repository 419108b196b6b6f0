"""Library-size normalisation of meta-cell counts, and per-gene moments read in one pass."""

from __future__ import annotations

from collections.abc import Iterable

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


def column_moments(blocks: Iterable[np.ndarray]) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    """Row count, per-column mean and population variance (float64, (g,) each) of (b, g) blocks read in one
    pass (Chan's pairwise merge, so memory stays one block whatever the rows); ``(0, None, None)`` when
    there are no rows."""
    n, mean, m2 = 0, None, None
    for block in blocks:
        x = np.asarray(block, dtype=np.float64)
        if len(x) == 0:
            continue
        b_mean = x.mean(0)
        b_m2 = np.square(x - b_mean).sum(0)
        if mean is None:
            n, mean, m2 = len(x), b_mean, b_m2
            continue
        total = n + len(x)
        delta = b_mean - mean
        mean = mean + delta * (len(x) / total)
        m2 = m2 + b_m2 + delta**2 * (n * len(x) / total)
        n = total
    return n, mean, (m2 / n if n else None)
