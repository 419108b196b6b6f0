"""Cell metadata to CELLxGENE column names and the reference vocabularies.

The normalised columns follow the OmniCellTOSG release (docs: shared/design/REFERENCE.md):
``disease`` (healthy / control / none / no disease -> ``normal``; raw in ``disease_raw``), a tidy
``cell_type`` (raw in ``cell_type_raw``), ``sex_normalized`` (female / male / unknown),
``development_stage_numeric_age`` (years; negative before birth) and ``development_stage_category``
(13 categories cut at 0.08, 1, 6, 13, 19, 25, 45, 65 and 80 years), ``tissue_general``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError

CELLXGENE_COLUMNS = (
    "cell_type", "tissue", "tissue_general", "disease", "sex", "development_stage",
    "donor_id", "assay", "suspension_type", "dataset_id",
)
UNKNOWN = "unknown"

# (lower bound in years, category), highest first; each bound is inclusive.
AGE_CUTS = (
    (80.0, "80 and over"), (65.0, "aged"), (45.0, "middle aged"), (25.0, "adult"), (19.0, "young adult"),
    (13.0, "adolescent"), (6.0, "child"), (1.0, "preschool child"), (0.08, "infant"), (0.0, "newborn"),
)
DEVELOPMENT_STAGE_CATEGORIES = tuple(c for _, c in AGE_CUTS) + ("fetal", "embryonic", UNKNOWN)

# Prenatal ages: weeks post-fertilisation at birth; the embryonic period is the first 8 weeks.
WEEKS_AT_BIRTH = 38.0
EMBRYONIC_WEEKS = 8.0
WEEKS_PER_YEAR = 365.25 / 7
# Carnegie stage -> approximate day post-fertilisation (O'Rahilly and Mueller, middle of each range).
CARNEGIE_DAY = {
    1: 1, 2: 3, 3: 5, 4: 6, 5: 9, 6: 14, 7: 17, 8: 19, 9: 21, 10: 23, 11: 25, 12: 27, 13: 29, 14: 33,
    15: 36, 16: 39, 17: 42, 18: 44, 19: 47, 20: 50, 21: 52, 22: 54, 23: 57,
}

_NORMAL_DISEASE = {"healthy", "control", "controls", "healthy control", "none", "no disease", "", "normal",
                   "nan", "na", "n/a", "ctrl", "non-diseased", "not diseased"}
_MISSING = {"", "nan", "none", "na", "n/a", "null", "unknown", "unassigned", "unannotated", "not available"}
_SEX = {"female": "female", "f": "female", "woman": "female", "male": "male", "m": "male", "man": "male"}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10}
# Stage names that carry no number: checked in order, first substring match wins.
_STAGE_WORDS = (
    ("post-juvenile", "adult"), ("young adult", "young adult"), ("prime adult", "adult"), ("late adult", "middle aged"),
    ("middle aged", "middle aged"), ("aged", "aged"), ("elderly", "aged"), ("adolescent", "adolescent"),
    ("teen", "adolescent"), ("preschool", "preschool child"), ("toddler", "preschool child"),
    ("child", "child"), ("juvenile", "child"), ("pediatric", "child"), ("infant", "infant"),
    ("newborn", "newborn"), ("neonat", "newborn"), ("fetal", "fetal"), ("fetus", "fetal"),
    ("foetal", "fetal"), ("embryo", "embryonic"), ("adult", "adult"), ("mature", "adult"),
)
# tissue -> tissue_general, first substring match wins (used only when tissue_general is missing).
_TISSUE_GENERAL = (
    ("bone marrow", "bone marrow"), ("lymph node", "lymph node"), ("blood", "blood"), ("pbmc", "blood"),
    ("lung", "lung"), ("bronch", "lung"), ("alveol", "lung"), ("airway", "lung"), ("trachea", "lung"),
    ("cortex", "brain"), ("brain", "brain"), ("hippocamp", "brain"), ("cerebel", "brain"),
    ("nucleus", "brain"), ("gyrus", "brain"), ("heart", "heart"), ("ventric", "heart"),
    ("atri", "heart"), ("cardi", "heart"), ("liver", "liver"), ("hepat", "liver"), ("kidney", "kidney"),
    ("renal", "kidney"), ("colon", "large intestine"), ("rectum", "large intestine"),
    ("caecum", "large intestine"), ("cecum", "large intestine"), ("ileum", "small intestine"),
    ("jejunum", "small intestine"), ("duodenum", "small intestine"), ("small intestine", "small intestine"),
    ("intestin", "intestine"), ("skin", "skin of body"), ("breast", "breast"), ("mammary", "breast"),
    ("spleen", "spleen"), ("pancrea", "pancreas"), ("stomach", "stomach"), ("esophag", "esophagus"),
    ("retina", "eye"), ("eye", "eye"), ("prostate", "prostate gland"), ("placenta", "placenta"),
    ("testis", "testis"), ("ovary", "ovary"), ("uter", "uterus"), ("adipose", "adipose tissue"),
    ("fat", "adipose tissue"), ("thymus", "thymus"), ("tonsil", "tonsil"), ("nose", "nose"),
    ("nasal", "nose"), ("muscle", "musculature"),
)


def normalize_metadata(obs: pd.DataFrame, obs_map: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rename metadata columns to CELLxGENE names and add the normalised columns.

    Parameters
    ----------
    obs
        One row per cell (any index).
    obs_map
        ``{column in obs: CELLxGENE name}``, applied first.

    Returns
    -------
    Copy of ``obs`` (same index and other columns) with every CELLxGENE column present (missing ones
    ``"unknown"``), ``disease`` and ``cell_type`` normalised beside ``disease_raw`` and ``cell_type_raw``,
    and ``sex_normalized``, ``development_stage_numeric_age`` (float years), ``development_stage_category``.
    """
    out = obs.copy()
    if obs_map:
        missing = sorted(set(obs_map) - set(out.columns))
        if missing:
            raise MalformedInputError(
                f"obs map names columns that the input does not have: {missing}; "
                f"available columns: {sorted(map(str, out.columns))}. Fix the --obs-map entries."
            )
        unknown_targets = sorted(set(obs_map.values()) - set(CELLXGENE_COLUMNS))
        if unknown_targets:
            raise MalformedInputError(
                f"obs map targets {unknown_targets} are not CELLxGENE columns; use one of {list(CELLXGENE_COLUMNS)}."
            )
        out = out.drop(columns=[t for t in obs_map.values() if t in out.columns and t not in obs_map])
        out = out.rename(columns=dict(obs_map))
    for column in CELLXGENE_COLUMNS:
        out[column] = _as_text(out[column]) if column in out.columns else UNKNOWN
    out["disease_raw"] = out["disease"]
    out["disease"] = _map_unique(out["disease"], normalize_disease)
    out["cell_type_raw"] = out["cell_type"]
    out["cell_type"] = _map_unique(out["cell_type"], tidy_cell_type)
    out["sex_normalized"] = _map_unique(out["sex"], normalize_sex)
    ages = _map_unique(out["development_stage"], parse_age_years)
    out["development_stage_numeric_age"] = ages.astype(np.float64)
    out["development_stage_category"] = _map_unique(out["development_stage"], development_stage_category)
    missing_general = out["tissue_general"].str.lower().isin(_MISSING)
    out.loc[missing_general, "tissue_general"] = _map_unique(out.loc[missing_general, "tissue"], tissue_general)
    return out


def normalize_disease(value: str) -> str:
    """``normal`` for healthy / control / none / no disease / empty, else the tidied name."""
    text = _squash(value)
    return "normal" if text.lower() in _NORMAL_DISEASE else text


def tidy_cell_type(value: str) -> str:
    """Collapse whitespace and underscores, drop trailing dots; missing-like values become ``unknown``."""
    text = _squash(value.replace("_", " ")).rstrip(".").strip()
    return UNKNOWN if text.lower() in _MISSING else text


def normalize_sex(value: str) -> str:
    """``female`` / ``male`` / ``unknown``."""
    return _SEX.get(_squash(value).lower(), UNKNOWN)


def tissue_general(tissue: str) -> str:
    """Coarse tissue for a tissue name (``unknown`` when missing; the name itself when no rule matches)."""
    text = _squash(tissue).lower()
    if text in _MISSING:
        return UNKNOWN
    return next((general for key, general in _TISSUE_GENERAL if key in text), text)


def parse_age_years(stage: str) -> float:
    """Age in years named by a development stage string; negative before birth; NaN when not numeric.

    ``"45-year-old human stage"`` -> 45, ``"third decade human stage"`` -> 25 (middle of 20-30),
    ``"80 year-old and over human stage"`` -> 80, ``"6-month-old human stage"`` -> 0.5,
    ``"newborn human stage"`` -> 0, ``"10th week post-fertilization human stage"`` -> 9.5 weeks
    post-fertilisation, ``"Carnegie stage 20"`` -> day 50; prenatal ages are
    ``(weeks post-fertilisation - 38) / 52.18``. Words without a number (``"adult"``) give NaN.
    """
    text = _squash(stage).lower()
    if match := re.search(r"carnegie stage\s*(\d+)", text):
        day = CARNEGIE_DAY.get(int(match.group(1)))
        return _prenatal_years(day / 7) if day is not None else math.nan
    if match := re.search(r"(\d+(?:\.\d+)?)(?:st|nd|rd|th)?[- ]week post[- ]fertili[sz]ation", text):
        return _prenatal_years(float(match.group(1)) - 0.5)
    if match := re.search(r"(\d+(?:\.\d+)?)[- ](?:to|-)?\s*(\d+(?:\.\d+)?)?[- ]?(year|month|week|day)s?[- ]old", text):
        low, high, unit = float(match.group(1)), match.group(2), match.group(3)
        value = (low + float(high)) / 2 if high else low
        return value / {"year": 1.0, "month": 12.0, "week": WEEKS_PER_YEAR, "day": 365.25}[unit]
    if match := re.search(r"(\w+) decade", text):
        ordinal = _ORDINALS.get(match.group(1))
        return 10.0 * (ordinal - 1) + 5.0 if ordinal else math.nan
    if "newborn" in text:
        return 0.0
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*(y|yr|yrs|year|years|m|mo|month|months)?", text):
        value, unit = float(match.group(1)), match.group(2) or "y"
        return value / 12.0 if unit.startswith("m") else value
    return math.nan


def development_stage_category(stage: str) -> str:
    """One of the 13 categories of :data:`DEVELOPMENT_STAGE_CATEGORIES` for a stage string."""
    text = _squash(stage).lower()
    if "carnegie" in text:  # Carnegie stages 1-23 span the embryonic period by definition
        return "embryonic"
    age = parse_age_years(stage)
    if not math.isnan(age):
        return category_for_age(age)
    return next((category for key, category in _STAGE_WORDS if key in text), UNKNOWN)


def category_for_age(age_years: float) -> str:
    """Category of an age in years: the reference's cut points; before birth fetal or embryonic."""
    if math.isnan(age_years):
        return UNKNOWN
    if age_years < 0:
        weeks = WEEKS_AT_BIRTH + age_years * WEEKS_PER_YEAR
        return "embryonic" if weeks < EMBRYONIC_WEEKS else "fetal"
    return next(category for bound, category in AGE_CUTS if age_years >= bound)


def _prenatal_years(weeks_post_fertilisation: float) -> float:
    return (weeks_post_fertilisation - WEEKS_AT_BIRTH) / WEEKS_PER_YEAR


def _squash(value: object) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def _as_text(column: pd.Series) -> pd.Series:
    """Column as str with NaN / None as ``unknown``."""
    values = column.astype(object)
    return values.where(values.notna(), UNKNOWN).astype(str)


def _map_unique(column: pd.Series, function) -> pd.Series:
    """Apply ``function`` once per distinct value (metadata has few distinct values, many rows)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    mapped = np.array([function(value) for value in uniques], dtype=object)
    return pd.Series(mapped[codes] if len(uniques) else mapped[:0], index=column.index)
