"""Train / validation / test splits that never put one donor (or one meta-cell) in two splits."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from celltosg.errors import SplitError
from celltosg.loader._fields import is_missing

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)


def check_fractions(fractions) -> tuple[float, float, float]:
    """Validate (train, val, test) fractions: train and test > 0, val >= 0, summing to 1."""
    train, val, test = (float(f) for f in fractions)
    if train <= 0 or test <= 0 or val < 0 or abs(train + val + test - 1.0) > 1e-6:
        raise SplitError(
            f"split fractions {tuple(fractions)} must be (train > 0, val >= 0, test > 0) summing to 1, "
            "for example (0.7, 0.1, 0.2)."
        )
    return train, val, test


def donor_groups(obs: pd.DataFrame) -> np.ndarray:
    """Donor number (int64, (n,)) of each row; the donor key is the pair (dataset_id, donor_id).

    The pair is compared as a pair, never as a joined string, so ids containing separators cannot
    collide. Rows without a donor id form one pseudo-donor per dataset.
    """
    for column in ("dataset_id", "donor_id"):
        if column not in obs.columns:
            raise SplitError(
                f"the obs table has no {column!r} column, so a donor-wise split is impossible; pass "
                "split_by='cell' to split meta-cells instead (estimates are then optimistic)."
            )
    dataset = obs["dataset_id"].astype("string").str.strip().fillna("<missing dataset>")
    donor = obs["donor_id"].astype("string").str.strip()
    unknown = is_missing(obs["donor_id"])
    if unknown.any():
        logger.warning("%d rows have no donor id; each dataset's such rows are kept together as one donor",
                       int(unknown.sum()))
    donor = donor.mask(pd.Series(unknown, index=obs.index), "<unknown donor>")
    keys = pd.MultiIndex.from_arrays([dataset.to_numpy(), donor.to_numpy()])
    return pd.factorize(keys)[0].astype(np.int64)


def _majority(groups: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent stratum (ties: smallest code) of each group, and the group ids in that order."""
    table = pd.crosstab(groups, strata)
    return table.to_numpy().argmax(axis=1).astype(np.int64), table.index.to_numpy()


def _allocate_stratum(members: np.ndarray, sizes: np.ndarray, fractions, rng) -> dict[int, str]:
    """Assign the groups of one stratum to splits: fill test, then val, up to twice their share."""
    order = members[rng.permutation(len(members))]
    total = sizes[order].sum()
    assigned: dict[int, str] = {}
    for split, fraction, later in (("test", fractions[2], 1 + (fractions[1] > 0)), ("val", fractions[1], 1)):
        target, cap, filled = fraction * total, 2 * fraction * total, 0
        for group in order:
            if filled >= target or fraction == 0 or len(members) - len(assigned) <= later:
                break
            if group in assigned or filled + sizes[group] > cap:
                continue
            assigned[group] = split
            filled += sizes[group]
    free = [g for g in order if g not in assigned]
    wanted = [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0]
    if len(members) >= len(wanted):
        for split in ("test", "val"):
            if split in wanted and split not in assigned.values() and len(free) > 1:
                smallest = min(free, key=lambda g: sizes[g])
                assigned[smallest] = split
                free.remove(smallest)
    for group in free:
        assigned[group] = "train"
    return assigned


def _split_groups(groups: np.ndarray, strata: np.ndarray | None, fractions, seed: int, unit: str) -> np.ndarray:
    fractions = check_fractions(fractions)
    rng = np.random.default_rng(seed)
    n_groups = int(groups.max()) + 1 if groups.size else 0
    sizes = np.bincount(groups, minlength=n_groups)
    if strata is None:
        group_stratum, group_ids = np.zeros(n_groups, dtype=np.int64), np.arange(n_groups)
    else:
        group_stratum, group_ids = _majority(groups, strata)
    split_of_group = np.empty(n_groups, dtype=object)
    for stratum in np.unique(group_stratum):
        members = group_ids[group_stratum == stratum]
        for group, split in _allocate_stratum(members, sizes, fractions, rng).items():
            split_of_group[group] = split
    split = split_of_group[groups].astype(str)
    wanted = [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0]
    empty = [s for s in wanted if not (split == s).any()]
    if empty:
        raise SplitError(
            f"cannot fill the {', '.join(empty)} split(s): the cohort has {n_groups} {unit}(s) "
            f"(sizes {sorted(sizes.tolist(), reverse=True)[:10]}), too few to give every split its own. "
            "Widen the query, change the split fractions, or for data without donors pass split_by='cell'."
        )
    return split


def split_by_donor(obs: pd.DataFrame, *, fractions=DEFAULT_FRACTIONS, seed: int = 2025,
                   strata: str | list[str] | None = None) -> np.ndarray:
    """Split rows by donor (dataset_id, donor_id): each donor's rows go to exactly one split.

    Donors are shuffled with ``seed`` (within each stratum of their majority ``strata`` value, a column or
    the combination of several, so every split sees every class where donors allow). Test is filled first, then validation, each up to twice its
    share of rows and always leaving a donor for the later splits, so one giant donor cannot swallow the
    test split; the rest is training. (The reference sends the smallest donors to test; shuffling avoids
    a test set made only of small donors.)

    Returns
    -------
    numpy.ndarray
        (n,) strings in {"train", "val", "test"}.
    """
    groups = donor_groups(obs)
    codes = _strata_codes(obs, [strata] if isinstance(strata, str) else strata) if strata else None
    split = _split_groups(groups, codes, fractions, seed, "donor")
    check_disjoint(obs, split)
    return split


def _strata_codes(obs: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Stratum code (int64, (n,)) of each row: the combination of its values in ``columns``."""
    keys = obs[columns].astype("string").fillna("<missing>").agg("\x1f".join, axis=1)
    return pd.factorize(keys, sort=True)[0].astype(np.int64)


def split_by_cell(obs: pd.DataFrame, *, fractions=DEFAULT_FRACTIONS, seed: int = 2025,
                  strata: str | None = None, positions: np.ndarray | None = None) -> np.ndarray:
    """Split meta-cells ignoring donors, stratified by ``strata``; copies of one meta-cell stay together.

    Meta-cells of one donor share biology, so metrics from such a split are optimistic; a warning says so.
    """
    warnings.warn(
        "splitting by cell, not by donor: meta-cells of one donor land in several splits, so test metrics "
        "are optimistic. Use split_by='donor' when donor ids exist.", UserWarning, stacklevel=2)
    keys = np.arange(len(obs)) if positions is None else np.asarray(positions)
    groups = pd.factorize(keys)[0].astype(np.int64)
    codes = pd.factorize(obs[strata].astype("string").fillna("<missing>"), sort=True)[0] if strata else None
    return _split_groups(groups, codes, fractions, seed, "meta-cell")


def check_disjoint(obs: pd.DataFrame, split: np.ndarray) -> None:
    """Raise :class:`SplitError` when a donor (dataset_id, donor_id) has rows in two splits."""
    groups = donor_groups(obs)
    frame = pd.DataFrame({"g": groups, "s": np.asarray(split)})
    per_donor = frame.groupby("g")["s"].nunique()
    leaking = per_donor[per_donor > 1].index.to_numpy()
    if leaking.size:
        rows = obs.iloc[np.flatnonzero(np.isin(groups, leaking[:5]))][["dataset_id", "donor_id"]]
        names = sorted({f"{d}/{p}" for d, p in rows.itertuples(index=False)})
        raise SplitError(f"{leaking.size} donor(s) appear in more than one split, e.g. {names}; this leaks.")
