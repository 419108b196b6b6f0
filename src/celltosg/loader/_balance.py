"""Task rules: which rows a task keeps and how cases are balanced against matched controls."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from celltosg.errors import QueryError
from celltosg.loader._fields import STAGES, is_missing, stage_rank

logger = logging.getLogger(__name__)

TASKS = ("pretrain", "disease", "sex", "cell_type")
#: Task -> obs column holding its label.
LABEL_COLUMNS = {"disease": "disease", "sex": "sex_normalized", "cell_type": "cell_type", "pretrain": None}
#: Task -> (control value, match keys) for the case/control tasks.
MATCHING = {
    "disease": ("normal", ("cell_type", "sex_normalized", "development_stage_category")),
    "sex": ("male", ("cell_type", "development_stage_category")),
}
#: Cell-type labels that are not cell types.
JUNK_CELL_TYPES = frozenset({"unannotated", "unannoted", "unknown", "miscellaneous", "splatter", "cell", ""})
STAGE_COLUMN = "development_stage_category"


def check_task(task: str | None) -> str:
    """Return ``task`` when it is one of :data:`TASKS` (None means pretrain), else raise."""
    task = "pretrain" if task is None else str(task)
    task = {"gender": "sex", "celltype": "cell_type"}.get(task, task)
    if task not in TASKS:
        raise QueryError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    return task


def _key_missing(frame: pd.DataFrame, column: str) -> np.ndarray:
    return is_missing(frame[column]) if column in frame.columns else np.ones(len(frame), dtype=bool)


def match_by_keys(reference: pd.DataFrame, target: pd.DataFrame, keys: Sequence[str], *, seed: int,
                  max_stage_offset: int = 2, upsample: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw target rows mirroring the reference rows group by group.

    For each group of reference rows sharing ``keys`` (cell type first, the development stage among
    them), draw as many target rows: first from the same group, then from up to ``max_stage_offset``
    younger stages, then by resampling what was drawn. A group whose sex or stage is unknown matches on
    cell type alone. A target row is drawn at most once before resampling. Groups with no candidate are
    dropped from the reference.

    Returns
    -------
    (kept_reference, matched_target)
        Reference rows that found a match, and the drawn target rows (may repeat when resampled).
    """
    keys = list(keys)
    cell_key = keys[0]
    rng = np.random.default_rng(seed)
    norm_target = target[keys].astype("string").apply(lambda s: s.str.strip().str.lower()).fillna("unknown")
    norm_reference = reference[keys].astype("string").apply(lambda s: s.str.strip().str.lower()).fillna("unknown")
    loose_ref = np.zeros(len(reference), dtype=bool)
    for key in keys[1:]:
        loose_ref |= _key_missing(reference, key)
    target_groups = {k: np.asarray(v) for k, v in norm_target.groupby(keys, sort=True).indices.items()}
    target_by_cell = {k: np.asarray(v) for k, v in norm_target.groupby(cell_key, sort=True).indices.items()}
    used = np.zeros(len(target), dtype=bool)

    def draw(candidates: np.ndarray, needed: int) -> np.ndarray:
        free = candidates[~used[candidates]]
        take = rng.choice(free, size=min(needed, len(free)), replace=False) if len(free) else free
        used[take] = True
        return take

    kept_ref, drawn = [], []
    grouped = norm_reference.assign(_loose=loose_ref).groupby([*keys, "_loose"], sort=True).indices
    for group_key, ref_rows in grouped.items():
        *values, loose = group_key
        needed = len(ref_rows)
        parts: list[np.ndarray] = []
        if loose:
            parts.append(draw(target_by_cell.get(values[0], np.empty(0, np.int64)), needed))
        else:
            parts.append(draw(target_groups.get(tuple(values), np.empty(0, np.int64)), needed))
            rank = stage_rank(values[keys.index(STAGE_COLUMN)]) if STAGE_COLUMN in keys else None
            for offset in range(1, max_stage_offset + 1):
                got = sum(len(p) for p in parts)
                if rank is None or got >= needed or rank + offset >= len(STAGES) - 1:
                    break
                younger = list(values)
                younger[keys.index(STAGE_COLUMN)] = STAGES[rank + offset]
                parts.append(draw(target_groups.get(tuple(younger), np.empty(0, np.int64)), needed - got))
        picked = np.concatenate(parts).astype(np.int64)
        if picked.size == 0:
            logger.info("no match for %s=%s: %d reference rows dropped", keys, values, needed)
            continue
        if upsample and picked.size < needed:
            picked = np.concatenate([picked, rng.choice(picked, size=needed - picked.size, replace=True)])
        kept_ref.append(np.asarray(ref_rows, dtype=np.int64))
        drawn.append(picked)
    if not drawn:
        raise QueryError(
            f"no control matches any case on {', '.join(keys)}; widen the query (for example drop the cell "
            "type or sex condition) or pass stratified_balancing=False."
        )
    return reference.iloc[np.sort(np.concatenate(kept_ref))], target.iloc[np.concatenate(drawn)]


def split_cases_controls(pool: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cases (label present, not the control value) and controls (the control value) of a matched task."""
    control, _ = MATCHING[task]
    column = pool[LABEL_COLUMNS[task]]
    missing = is_missing(column)
    is_control = column.astype("string").str.strip().str.lower().eq(control).fillna(False).to_numpy(dtype=bool)
    cases, controls = pool[~missing & ~is_control], pool[is_control]
    if cases.empty or controls.empty:
        raise QueryError(
            f"task {task!r} needs cases and {control!r} controls; the query gave {len(cases)} cases and "
            f"{len(controls)} controls. Widen the query so both occur."
        )
    return cases, controls


def balance_matched(cases: pd.DataFrame, controls: pd.DataFrame, task: str, *, seed: int) -> pd.DataFrame:
    """Case/control rows balanced on the task's match keys: the smaller side is mirrored by the larger."""
    _, keys = MATCHING[task]
    missing = [k for k in keys if k not in cases.columns]
    if missing:
        raise QueryError(f"the store's obs lacks {missing}, needed to match {task} cases with controls.")
    if len(cases) <= len(controls):
        kept, matched = match_by_keys(cases, controls, keys, seed=seed)
    else:
        kept, matched = match_by_keys(controls, cases, keys, seed=seed)
    logger.info("balanced %s: %d reference rows matched by %d drawn rows", task, len(kept), len(matched))
    return pd.concat([kept, matched])


def clean_cell_types(frame: pd.DataFrame, *, min_class_size: int = 10) -> pd.DataFrame:
    """Drop rows with junk or missing cell types, then labels with fewer than ``min_class_size`` rows."""
    labels = frame["cell_type"].astype("string").str.strip().str.lower()
    frame = frame[~(labels.isna() | labels.isin(JUNK_CELL_TYPES)).to_numpy(dtype=bool)]
    counts = frame["cell_type"].value_counts()
    rare = counts[counts < min_class_size]
    if len(rare):
        logger.warning("dropping %d cell types with fewer than %d meta-cells: %s", len(rare), min_class_size,
                       ", ".join(f"{k} ({v})" for k, v in rare.items()))
    frame = frame[~frame["cell_type"].isin(rare.index)]
    if frame["cell_type"].nunique() < 2:
        raise QueryError(
            f"the cell_type task needs at least 2 cell types with {min_class_size}+ meta-cells; found "
            f"{frame['cell_type'].nunique()}. Widen the query or lower min_class_size."
        )
    return frame
