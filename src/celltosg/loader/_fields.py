"""Field names of the store's obs table: the reference's aliases and the values treated as missing."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from celltosg.errors import QueryError

#: Reference field names (and their short aliases) -> the store's obs columns.
FIELD_ALIASES: dict[str, str] = {
    "CMT_name": "cell_type",
    "disease_BMG_name": "disease",
    "sex": "sex_normalized",
    "gender": "sex_normalized",
    "development_stage": "development_stage_category",
}

#: Development stages from oldest to youngest (the reference's order); "unknown" last.
STAGES: tuple[str, ...] = (
    "80 and over", "aged", "middle aged", "adult", "young adult", "adolescent", "child",
    "preschool child", "infant", "newborn", "fetal", "embryonic", "unknown",
)

#: Values that mean "not recorded" in any label column (compared lower-cased and stripped).
MISSING_VALUES: frozenset[str] = frozenset({"", "nan", "none", "na", "n/a", "unknown", "unannotated", "unannoted"})

#: Store bookkeeping columns that are not conditions.
INTERNAL_COLUMNS: frozenset[str] = frozenset({"cell_id", "shard", "row", "raw_cells"})


def resolve_field(name: str, columns: Iterable[str]) -> str:
    """Map a condition or label name to an obs column, raising when it names none.

    Parameters
    ----------
    name
        A column of the store's obs table or one of the reference's aliases (:data:`FIELD_ALIASES`).
    columns
        The obs columns of the store.
    """
    columns = list(columns)
    resolved = FIELD_ALIASES.get(name, name)
    if resolved in columns:
        return resolved
    aliases = {a for a, c in FIELD_ALIASES.items() if c in columns}
    valid = sorted(set(columns) - INTERNAL_COLUMNS) + sorted(aliases - set(columns))
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise QueryError(f"unknown field {name!r}.{hint} Valid fields: {', '.join(valid)}.")


def is_missing(values: pd.Series) -> np.ndarray:
    """Boolean mask (n,) of entries that are null or spell a missing value ("unknown", "", ...)."""
    text = values.astype("string").str.strip().str.lower()
    return (values.isna() | text.isin(MISSING_VALUES)).to_numpy(dtype=bool)


def stage_rank(stage: str) -> int | None:
    """Position of a development stage in :data:`STAGES` (older first), or None when not a known stage."""
    key = str(stage).strip().lower()
    return STAGES.index(key) if key in STAGES else None
