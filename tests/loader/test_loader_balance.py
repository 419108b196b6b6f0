"""Case/control matching with stage back-off and resampling, and the cell-type task rules, on hand cases."""

from __future__ import annotations

import pandas as pd
import pytest

from celltosg.errors import QueryError
from celltosg.loader import match_by_keys
from celltosg.loader._balance import balance_matched, clean_cell_types

KEYS = ["cell_type", "sex_normalized", "development_stage_category"]


def _rows(prefix: str, spec: list[tuple[str, str, str, int]], disease: str) -> pd.DataFrame:
    rows = [(ct, sex, stage, disease) for ct, sex, stage, n in spec for _ in range(n)]
    frame = pd.DataFrame(rows, columns=[*KEYS, "disease"])
    frame.index = [f"{prefix}{i}" for i in range(len(frame))]
    return frame


def test_exact_then_younger_stages_then_nothing_older():
    cases = _rows("c", [("T", "female", "adult", 3), ("B", "male", "aged", 2)], "AD")
    controls = _rows("n", [("T", "female", "adult", 1), ("T", "female", "young adult", 1),
                           ("T", "female", "adolescent", 5), ("T", "female", "child", 5),
                           ("B", "male", "80 and over", 4)], "normal")
    kept, matched = match_by_keys(cases, controls, KEYS, seed=0)
    assert sorted(kept.index) == ["c0", "c1", "c2"]  # B/male/aged finds only an older stage: dropped
    stages = matched["development_stage_category"].value_counts().to_dict()
    assert stages == {"adult": 1, "young adult": 1, "adolescent": 1}
    assert matched.index.is_unique


def test_back_off_stops_after_two_stages_then_resamples():
    cases = _rows("c", [("T", "female", "adult", 4)], "AD")
    controls = _rows("n", [("T", "female", "adult", 1), ("T", "female", "child", 9)], "normal")
    kept, matched = match_by_keys(cases, controls, KEYS, seed=0)
    assert len(kept) == 4 and len(matched) == 4
    assert set(matched.index) == {"n0"}  # child is 3 stages younger: never used; n0 resampled


def test_unknown_sex_matches_on_cell_type_alone():
    cases = _rows("c", [("T", "unknown", "adult", 2)], "AD")
    controls = _rows("n", [("T", "male", "aged", 3), ("B", "female", "adult", 3)], "normal")
    _, matched = match_by_keys(cases, controls, KEYS, seed=0)
    assert set(matched["cell_type"]) == {"T"} and len(matched) == 2


def test_matching_is_seeded():
    cases = _rows("c", [("T", "female", "adult", 3)], "AD")
    controls = _rows("n", [("T", "female", "adult", 30)], "normal")
    first = match_by_keys(cases, controls, KEYS, seed=5)[1].index
    assert first.equals(match_by_keys(cases, controls, KEYS, seed=5)[1].index)
    assert any(not first.equals(match_by_keys(cases, controls, KEYS, seed=s)[1].index) for s in range(6, 10))


def test_larger_side_is_drawn_to_mirror_the_smaller():
    cases = _rows("c", [("T", "female", "adult", 10)], "AD")
    controls = _rows("n", [("T", "female", "adult", 4)], "normal")
    out = balance_matched(cases, controls, "disease", seed=0)
    assert out["disease"].value_counts().to_dict() == {"normal": 4, "AD": 4}


def test_no_match_at_all_is_a_clear_error():
    cases = _rows("c", [("T", "female", "adult", 2)], "AD")
    controls = _rows("n", [("B", "female", "adult", 2)], "normal")
    with pytest.raises(QueryError, match="no control matches"):
        match_by_keys(cases, controls, KEYS, seed=0)


def test_cell_type_rules_drop_junk_and_rare_labels():
    labels = ["T cell"] * 12 + ["B cell"] * 10 + ["unknown"] * 20 + ["Cell"] * 15 + ["NK cell"] * 9 + [None] * 3
    out = clean_cell_types(pd.DataFrame({"cell_type": labels}), min_class_size=10)
    assert out["cell_type"].value_counts().to_dict() == {"T cell": 12, "B cell": 10}
