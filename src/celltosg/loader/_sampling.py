"""Seeded sub-sampling of a cohort: ``sample_ratio`` xor ``sample_size``, optionally per label."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from celltosg.errors import QueryError

logger = logging.getLogger(__name__)


def check_sampling(sample_ratio: float | None, sample_size: int | None) -> None:
    """Raise unless at most one of ``sample_ratio`` (in (0, 1]) and ``sample_size`` (>= 1) is given."""
    if sample_ratio is not None and sample_size is not None:
        raise QueryError(
            f"both sample_ratio={sample_ratio} and sample_size={sample_size} were given; pass only one of them."
        )
    if sample_ratio is not None and not (0.0 < float(sample_ratio) <= 1.0):
        raise QueryError(f"sample_ratio={sample_ratio} is outside (0, 1]; pass a fraction such as 0.1.")
    if sample_size is not None and (int(sample_size) != sample_size or sample_size < 1):
        raise QueryError(f"sample_size={sample_size} is not a positive integer.")


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` draws over groups in proportion to ``counts`` (largest remainder), capped by counts."""
    share = counts / counts.sum() * total
    take = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - take), kind="stable")[: total - take.sum()]:
        take[i] += 1
    return np.minimum(take, counts)


def sample_rows(frame: pd.DataFrame, *, sample_ratio: float | None = None, sample_size: int | None = None,
                seed: int = 2025, strata: str | None = None) -> pd.DataFrame:
    """Draw a seeded subset of ``frame`` rows without replacement, keeping the row order.

    Parameters
    ----------
    frame
        Rows to sample (n rows).
    sample_ratio, sample_size
        Fraction in (0, 1] or number of rows; at most one. Neither returns ``frame`` unchanged.
    seed
        Seed of the draw.
    strata
        Column whose groups are sampled in proportion (each group keeps at least one row when a ratio is
        given), so rare labels are not lost.
    """
    check_sampling(sample_ratio, sample_size)
    if sample_ratio is None and sample_size is None:
        return frame
    n = len(frame)
    if sample_size is not None and sample_size >= n:
        logger.warning("sample_size=%d is not below the %d rows available; keeping all of them", sample_size, n)
        return frame
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = pd.factorize(frame[strata].astype("string").fillna("<missing>"), sort=True)[0]
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    if sample_ratio is not None:
        take = np.array([max(1, math.floor(c * sample_ratio)) for c in counts], dtype=np.int64)
    else:
        take = _allocate(counts, int(sample_size))
    chosen = np.concatenate([rng.choice(g, size=k, replace=False) for g, k in zip(groups, take, strict=True)])
    return frame.iloc[np.sort(chosen)]
