from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from celltosg.build._metadata import (
    CELLXGENE_COLUMNS,
    DEVELOPMENT_STAGE_CATEGORIES,
    category_for_age,
    development_stage_category,
    normalize_metadata,
    parse_age_years,
)
from celltosg.errors import MalformedInputError


@pytest.mark.parametrize(
    ("age", "category"),
    [
        (0.0, "newborn"), (0.079, "newborn"), (0.08, "infant"), (0.99, "infant"), (1.0, "preschool child"),
        (5.99, "preschool child"), (6.0, "child"), (12.9, "child"), (13.0, "adolescent"), (18.9, "adolescent"),
        (19.0, "young adult"), (24.9, "young adult"), (25.0, "adult"), (44.9, "adult"), (45.0, "middle aged"),
        (64.9, "middle aged"), (65.0, "aged"), (79.9, "aged"), (80.0, "80 and over"), (103.0, "80 and over"),
        (math.nan, "unknown"),
    ],
)
def test_category_cut_points_on_boundary_ages(age, category):
    assert category_for_age(age) == category


@pytest.mark.parametrize(
    ("stage", "years", "category"),
    [
        ("45-year-old human stage", 45.0, "middle aged"),
        ("44-year-old human stage", 44.0, "adult"),
        ("52-year-old human stage", 52.0, "middle aged"),
        ("third decade human stage", 25.0, "adult"),
        ("second decade human stage", 15.0, "adolescent"),
        ("eighth decade human stage", 75.0, "aged"),
        ("80 year-old and over human stage", 80.0, "80 and over"),
        ("newborn human stage", 0.0, "newborn"),
        ("6-month-old human stage", 0.5, "infant"),
        ("2-5 year-old child stage", 3.5, "preschool child"),
        ("19 years", 19.0, "young adult"),
        # 9.5 weeks post-fertilisation is 28.5 weeks before birth (38 weeks)
        ("10th week post-fertilization human stage", -28.5 * 7 / 365.25, "fetal"),
        ("8th week post-fertilization human stage", -30.5 * 7 / 365.25, "embryonic"),
        ("9th week post-fertilization human stage", -29.5 * 7 / 365.25, "fetal"),
        ("Carnegie stage 20", (50 / 7 - 38) * 7 / 365.25, "embryonic"),
        ("Carnegie stage 23", (57 / 7 - 38) * 7 / 365.25, "embryonic"),
        ("65-79 year-old human stage", 72.0, "aged"),
        ("post-juvenile adult stage", math.nan, "adult"),
        ("human middle aged stage", math.nan, "middle aged"),
        ("adult", math.nan, "adult"),
        ("human adult stage", math.nan, "adult"),
        ("young adult stage", math.nan, "young adult"),
        ("late adult stage", math.nan, "middle aged"),
        ("fetal stage", math.nan, "fetal"),
        ("unknown", math.nan, "unknown"),
        ("", math.nan, "unknown"),
    ],
)
def test_development_stage_strings(stage, years, category):
    parsed = parse_age_years(stage)
    if math.isnan(years):
        assert math.isnan(parsed)
    else:
        assert parsed == pytest.approx(years)
    assert development_stage_category(stage) == category
    assert category in DEVELOPMENT_STAGE_CATEGORIES


def test_thirteen_categories():
    assert len(DEVELOPMENT_STAGE_CATEGORIES) == 13 and len(set(DEVELOPMENT_STAGE_CATEGORIES)) == 13


def test_normalize_metadata_renames_fills_and_normalises():
    obs = pd.DataFrame(
        {
            "CellType": ["T_cell ", "B  cell.", None, "monocyte"],
            "Condition": ["Healthy", "COVID-19", "control", np.nan],
            "Gender": ["F", "male", "M", "?"],
            "Age": ["45-year-old human stage", "adult", "Carnegie stage 20", None],
            "tissue": ["peripheral blood", "lung parenchyma", "brain", "blood"],
            "batch": ["b1", "b1", "b2", "b2"],
        },
        index=["a", "b", "c", "d"],
    )
    obs_map = {"CellType": "cell_type", "Condition": "disease", "Gender": "sex", "Age": "development_stage"}
    out = normalize_metadata(obs, obs_map)
    assert list(out.index) == ["a", "b", "c", "d"]
    assert set(CELLXGENE_COLUMNS) <= set(out.columns)
    assert out["batch"].tolist() == ["b1", "b1", "b2", "b2"]
    assert out["cell_type"].tolist() == ["T cell", "B cell", "unknown", "monocyte"]
    assert out["cell_type_raw"].tolist() == ["T_cell ", "B  cell.", "unknown", "monocyte"]
    assert out["disease"].tolist() == ["normal", "COVID-19", "normal", "unknown"]
    assert out["disease_raw"].tolist() == ["Healthy", "COVID-19", "control", "unknown"]
    assert out["sex_normalized"].tolist() == ["female", "male", "male", "unknown"]
    assert out["development_stage_category"].tolist() == ["middle aged", "adult", "embryonic", "unknown"]
    assert out["development_stage_numeric_age"].iloc[0] == 45.0
    assert np.isnan(out["development_stage_numeric_age"].iloc[1])
    assert out["tissue_general"].tolist() == ["blood", "lung", "brain", "blood"]
    assert (out["donor_id"] == "unknown").all() and (out["assay"] == "unknown").all()


def test_normalize_metadata_keeps_given_tissue_general_and_reports_bad_map():
    obs = pd.DataFrame({"tissue": ["colon"], "tissue_general": ["intestine"], "disease": [""]})
    out = normalize_metadata(obs)
    assert out["tissue_general"].tolist() == ["intestine"]
    assert out["disease"].tolist() == ["normal"]
    with pytest.raises(MalformedInputError, match="Donor"):
        normalize_metadata(obs, {"Donor": "donor_id"})
    with pytest.raises(MalformedInputError, match="not CELLxGENE"):
        normalize_metadata(obs, {"tissue": "organ"})
