"""Donor-wise splits: no donor in two splits, even on adversarial donor ids and sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.errors import SplitError
from celltosg.loader import check_disjoint, donor_groups, split_by_cell, split_by_donor


def _frame(donors: list[tuple[str, str, int]], label=None) -> pd.DataFrame:
    rows = [(ds, donor) for ds, donor, n in donors for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["dataset_id", "donor_id"])
    if label is not None:
        frame["label"] = label(frame)
    return frame


def _naive_leak(frame: pd.DataFrame, split: np.ndarray) -> set:
    """Donor pairs (dataset, donor) seen in more than one split, computed with plain Python."""
    seen: dict[tuple, set] = {}
    for (ds, donor), s in zip(frame[["dataset_id", "donor_id"]].itertuples(index=False), split, strict=True):
        seen.setdefault((ds, donor), set()).add(s)
    return {k for k, v in seen.items() if len(v) > 1}


def test_same_donor_id_in_two_datasets_is_two_donors():
    frame = _frame([("A", "D1", 5), ("B", "D1", 5), ("A", "D2", 5)])
    assert len(set(donor_groups(frame))) == 3


def test_separator_in_ids_cannot_merge_donors():
    frame = _frame([("a||b", "c", 3), ("a", "b||c", 3)])
    assert len(set(donor_groups(frame))) == 2


@pytest.mark.parametrize("seed", range(8))
def test_random_adversarial_frames_never_leak(seed):
    rng = np.random.default_rng(seed)
    donors = [(f"ds{rng.integers(3)}", f"D{rng.integers(8)}", int(rng.integers(1, 60))) for _ in range(25)]
    donors.append(("ds0", "giant", 2000))
    frame = _frame(donors, label=lambda f: np.where(rng.random(len(f)) < 0.5, "normal", "AD"))
    frame.loc[frame.sample(frac=0.05, random_state=seed).index, "donor_id"] = None
    split = split_by_donor(frame, seed=seed, strata="label")
    assert _naive_leak(frame, split) == set()
    assert set(split) == {"train", "val", "test"}


def test_giant_donor_goes_to_train_and_test_stays_bounded():
    frame = _frame([("A", "giant", 900)] + [("A", f"d{i}", 10) for i in range(10)])
    split = split_by_donor(frame, seed=0)
    assert set(split[frame["donor_id"] == "giant"]) == {"train"}
    assert (split == "test").mean() <= 0.4
    assert (split == "val").sum() > 0


def test_too_few_donors_is_a_clear_error():
    frame = _frame([("A", "D1", 50), ("A", "D2", 50)])
    with pytest.raises(SplitError, match="2 donor"):
        split_by_donor(frame, seed=0)


def test_missing_donor_column_points_to_cell_split():
    with pytest.raises(SplitError, match="split_by='cell'"):
        split_by_donor(pd.DataFrame({"dataset_id": ["a"] * 5}), seed=0)


def test_split_is_seeded():
    frame = _frame([("A", f"d{i}", 10 + i) for i in range(20)])
    a, b = split_by_donor(frame, seed=1), split_by_donor(frame, seed=1)
    assert (a == b).all()
    assert any((split_by_donor(frame, seed=s) != a).any() for s in range(2, 6))


def test_each_class_reaches_every_split_when_donors_allow():
    frame = _frame([("A", f"n{i}", 10) for i in range(6)] + [("A", f"c{i}", 10) for i in range(6)],
                   label=lambda f: np.where(f["donor_id"].str.startswith("c"), "AD", "normal"))
    split = split_by_donor(frame, seed=3, strata="label")
    for s in ("train", "val", "test"):
        assert set(frame["label"][split == s]) == {"AD", "normal"}


def test_check_disjoint_catches_a_leak():
    frame = _frame([("A", "D1", 2), ("A", "D2", 2)])
    with pytest.raises(SplitError, match="A/D1"):
        check_disjoint(frame, np.array(["train", "test", "train", "train"]))


def test_cell_split_warns_and_keeps_copies_together():
    frame = pd.DataFrame({"label": ["a"] * 40 + ["b"] * 40})
    positions = np.repeat(np.arange(40), 2)
    with pytest.warns(UserWarning, match="optimistic"):
        split = split_by_cell(frame, seed=0, strata="label", positions=positions)
    per_position = pd.Series(split).groupby(positions).nunique()
    assert (per_position == 1).all()
    assert set(split) == {"train", "val", "test"}


@pytest.mark.parametrize("seed", range(5))
def test_label_within_dataset_strata_keep_every_datasets_balance_in_training(seed):
    donors = [(f"ds{d}", f"D{d}_{k}", 10) for d in range(3) for k in range(8)]
    frame = _frame(donors, label=lambda f: np.where(f["donor_id"].str[-1].astype(int) % 2, "case", "normal"))
    split = split_by_donor(frame, seed=seed, strata=["label", "dataset_id"])
    assert _naive_leak(frame, split) == set() and set(split) == {"train", "val", "test"}
    train = frame[split == "train"].drop_duplicates("donor_id")
    for dataset, group in train.groupby("dataset_id"):
        counts = group["label"].value_counts()
        assert counts.get("case", 0) == counts.get("normal", 0) > 0, (dataset, counts.to_dict())
