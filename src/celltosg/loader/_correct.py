"""Batch correction with ComBat (inmoose): per tissue group, on one split at a time."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from celltosg.errors import QueryError
from celltosg.loader._fields import is_missing

logger = logging.getLogger(__name__)

METHODS = ("combat_seq", "combat")


@dataclass
class CorrectionReport:
    """What batch correction did per tissue group: corrected, skipped (why), covariates dropped (why)."""

    corrected: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    dropped_covariates: dict[str, str] = field(default_factory=dict)
    uncorrected_batches: dict[str, list[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One human-readable line per event."""
        out = [f"{g}: corrected" for g in self.corrected]
        out += [f"{g}: skipped ({why})" for g, why in self.skipped.items()]
        out += [f"{g}: covariate dropped ({why})" for g, why in self.dropped_covariates.items()]
        out += [f"{g}: batches left uncorrected (too few rows): {b}" for g, b in self.uncorrected_batches.items()]
        return out


def check_method(method: str | None) -> str | None:
    """Return ``method`` when it is None or one of :data:`METHODS`, else raise."""
    if method is not None and method not in METHODS:
        raise QueryError(f"unknown correction_method {method!r}; choose None, 'combat_seq' or 'combat'.")
    return method


def confounded(batch: np.ndarray, covariate: np.ndarray) -> bool:
    """True when the covariate cannot be told apart from the batches (design matrix not of full rank)."""
    b = pd.get_dummies(pd.Series(batch)).to_numpy(dtype=float)
    c = pd.get_dummies(pd.Series(covariate), drop_first=True).to_numpy(dtype=float)
    design = np.hstack([b, c])
    return np.linalg.matrix_rank(design) < design.shape[1]


def _run_combat(values: np.ndarray, batch: np.ndarray, covariate: np.ndarray | None, method: str) -> np.ndarray:
    """ComBat on one block (n, g) with >= 2 batches; returns (n, g) float32."""
    from inmoose.pycombat import pycombat_norm, pycombat_seq

    data = np.ascontiguousarray(values.T, dtype=np.float64)
    cov = None if covariate is None else list(covariate)
    quiet = logging.getLogger("inmoose")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "combat_seq":
                out = pycombat_seq(np.rint(data).astype(np.int64), list(batch), covar_mod=cov)
            else:
                out = pycombat_norm(data, list(batch), covar_mod=cov)
    finally:
        quiet.setLevel(level)
    out = np.asarray(out, dtype=np.float32).T
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def correct_batches(values: np.ndarray, obs: pd.DataFrame, *, method: str, batch_key: str = "dataset_id",
                    covariate: str | None = None, group_key: str = "tissue_general",
                    min_per_batch: int = 3) -> tuple[np.ndarray, CorrectionReport]:
    """Remove batch effects from ``values`` within each ``group_key`` group.

    Parameters
    ----------
    values
        (n, g): raw counts for ``"combat_seq"``, log-normalised values for ``"combat"``.
    obs
        (n rows) metadata aligned with ``values``.
    method
        ``"combat_seq"`` (negative-binomial ComBat-seq on counts) or ``"combat"`` (ComBat on log values).
    batch_key, covariate, group_key
        Batch column (dataset by default), a biological covariate whose signal is kept (the task label),
        and the column whose groups are corrected separately (tissue group).
    min_per_batch
        Batches with fewer rows in a group are left as they are.

    Returns
    -------
    (corrected, report)
        (n, g) float32 values (non-negative counts for ``combat_seq``) and what was done.
        Call once per split so that no split's data shapes another's correction.
    """
    check_method(method)
    out = np.array(values, dtype=np.float32, copy=True)
    report = CorrectionReport()
    groups = obs[group_key].astype("string").fillna("<missing>") if group_key in obs else pd.Series(
        "all", index=obs.index)
    batches = obs[batch_key].astype("string").fillna("<missing>").to_numpy()
    for group in sorted(groups.unique()):
        rows = np.flatnonzero(groups.to_numpy() == group)
        counts = pd.Series(batches[rows]).value_counts()
        ok = counts[counts >= min_per_batch].index
        small = sorted(set(counts.index) - set(ok))
        if small:
            report.uncorrected_batches[group] = small
        if len(ok) < 2:
            report.skipped[group] = f"{len(ok)} batch(es) with {min_per_batch}+ rows; nothing to correct"
            continue
        rows = rows[np.isin(batches[rows], ok)]
        block = out[rows]
        genes = np.flatnonzero(block.std(axis=0) > 0)
        cov = None
        if covariate is not None and covariate in obs:
            labels = obs[covariate].astype("string").fillna("unknown").to_numpy()[rows]
            if len(set(labels)) < 2:
                report.dropped_covariates[group] = f"{covariate} has one value"
            elif confounded(batches[rows], labels):
                report.dropped_covariates[group] = f"{covariate} is confounded with {batch_key}"
            elif is_missing(pd.Series(labels)).all():
                report.dropped_covariates[group] = f"{covariate} is missing"
            else:
                cov = labels
        if genes.size:
            block[:, genes] = _run_combat(block[:, genes], batches[rows], cov, method)
        out[rows] = block
        report.corrected.append(group)
    for line in report.lines():
        logger.info("batch correction: %s", line)
    return out, report
