"""Label encoding as the reference does it: the control class is 0, the other labels sorted from 1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltosg.errors import QueryError

#: Obs column -> labels that all encode as class 0.
ZERO_LABELS: dict[str, frozenset[str]] = {
    "disease": frozenset({"normal", "unclassified", "unknown"}),
    "sex_normalized": frozenset({"female"}),
}


def label_mapping(values: pd.Series, column: str) -> dict[str, int]:
    """Label -> class index: the column's control labels -> 0, the others sorted (case-insensitive) -> 1..K.

    Columns without control labels (cell type) number their sorted labels from 0.
    """
    labels = sorted({str(v) for v in values.dropna()}, key=lambda v: (v.lower(), v))
    if not labels:
        raise QueryError(f"column {column!r} holds no labels in this cohort.")
    zero = ZERO_LABELS.get(column, frozenset())
    mapping = {label: 0 for label in labels if label.lower() in zero}
    start = 1 if mapping else 0
    rest = [label for label in labels if label.lower() not in zero]
    mapping.update({label: start + i for i, label in enumerate(rest)})
    return mapping


def encode(values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    """Class indices (int64, (n,)) of ``values``; a label outside ``mapping`` raises."""
    codes = values.astype("string").map(mapping)
    if codes.isna().any():
        unknown = sorted(set(values[codes.isna()].astype(str)))
        raise QueryError(f"labels {unknown} are not in the label mapping {sorted(mapping)}.")
    return codes.to_numpy(dtype=np.int64)
