"""Library-size normalisation of meta-cell counts."""

from __future__ import annotations

import numpy as np

from celltosg.store import TARGET_SUM


def normalize_log1p(counts: np.ndarray, *, target_sum: float = TARGET_SUM) -> np.ndarray:
    """Scale each row to ``target_sum`` total counts, then log1p; rows without counts stay zero.

    Parameters
    ----------
    counts
        (n, g) non-negative counts.

    Returns
    -------
    numpy.ndarray
        (n, g) float32.
    """
    counts = np.asarray(counts, dtype=np.float32)
    totals = counts.sum(axis=1, keepdims=True, dtype=np.float64)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0).astype(np.float32)
    out = counts * scale
    np.log1p(out, out=out)
    return out
