"""``load_cohort``: query -> task rules and balancing -> sampling -> split -> labels -> Cohort."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from celltosg.errors import QueryError, SplitError
from celltosg.loader._balance import (
    LABEL_COLUMNS,
    MATCHING,
    balance_matched,
    check_task,
    clean_cell_types,
    split_cases_controls,
)
from celltosg.loader._cohort import Cohort
from celltosg.loader._correct import check_method
from celltosg.loader._fields import is_missing, resolve_field
from celltosg.loader._labels import label_mapping
from celltosg.loader._query import query
from celltosg.loader._sampling import check_sampling, sample_rows
from celltosg.loader._splits import DEFAULT_FRACTIONS, SPLITS, check_fractions, split_by_cell, split_by_donor

logger = logging.getLogger(__name__)

SPLIT_MODES = ("donor", "cell", None)


def open_store(store):
    """A :class:`~celltosg.store.TOSGStore` from a store or a store path."""
    from celltosg.store import TOSGStore

    return store if isinstance(store, TOSGStore) else TOSGStore.open(store)


def _with_controls(store, conditions: Mapping[str, Any], pool: pd.DataFrame, control: str, column: str):
    """The query's rows plus rows matching the same conditions with ``column`` set to the control value."""
    columns = store.obs.columns
    others = {k: v for k, v in conditions.items() if resolve_field(k, columns) != column}
    try:
        controls = query(store, {**others, column: control})
    except QueryError as error:
        raise QueryError(f"no {control!r} controls match the other conditions: {error}") from error
    both = pd.concat([pool, controls])
    return both[~both.index.duplicated()]


def _task_rows(store, conditions, pool, task, *, balance, sample_ratio, sample_size, seed, min_class_size):
    if task in MATCHING:
        control, _ = MATCHING[task]
        column = LABEL_COLUMNS[task]
        pool = _with_controls(store, conditions, pool, control, column)
        cases, controls = split_cases_controls(pool, task)
        if not balance:
            return sample_rows(pd.concat([cases, controls]), sample_ratio=sample_ratio, sample_size=sample_size,
                               seed=seed, strata=column)
        cases = sample_rows(cases, sample_ratio=sample_ratio, sample_size=sample_size, seed=seed, strata=column)
        return balance_matched(cases, controls, task, seed=seed)
    if task == "cell_type":
        sampled = sample_rows(pool, sample_ratio=sample_ratio, sample_size=sample_size, seed=seed,
                              strata="cell_type")
        return clean_cell_types(sampled, min_class_size=min_class_size)
    if "is_pretrain_data" in pool.columns and pool["is_pretrain_data"].fillna(False).astype(bool).any():
        pool = pool[pool["is_pretrain_data"].fillna(False).astype(bool).to_numpy()]
    return sample_rows(pool, sample_ratio=sample_ratio, sample_size=sample_size, seed=seed)


def _drop_classes_missing_from_a_split(frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    present = frame.groupby("label")["split"].agg(lambda s: set(s))
    incomplete = [label for label, splits in present.items() if not set(wanted) <= splits]
    if incomplete:
        logger.warning("dropping %d cell types without a donor in every split: %s", len(incomplete), incomplete)
        frame = frame[~frame["label"].isin(incomplete)]
    if frame["label"].nunique() < 2:
        raise QueryError("fewer than 2 cell types have donors in every split; widen the query or add donors.")
    return frame


def _donor_split(frame: pd.DataFrame, task: str, *, fractions, seed: int, strata: str | None) -> np.ndarray:
    """Donor split; case/control tasks stratify by label within each dataset when the datasets allow.

    Stratifying by label alone lets a split hold out, say, a case of a dataset whose other donors then
    train as mostly controls: the dataset's batch signature becomes a label cue that points the wrong way
    on the held-out donor. Label x dataset strata keep every dataset's label balance in training; when
    they cannot give every split every label, the split falls back to label strata (with a warning).
    """
    if task in MATCHING and strata is not None and "dataset_id" in frame.columns:
        try:
            split = split_by_donor(frame, fractions=fractions, seed=seed, strata=[strata, "dataset_id"])
        except SplitError:
            split = None
        labels = frame[strata].to_numpy()
        if split is not None and all(set(labels[split == s]) == set(labels) for s in np.unique(split)):
            return split
        logger.warning("too few donors per dataset and label to stratify the split by dataset; "
                       "stratifying by label only, so dataset and label may be associated in training")
    return split_by_donor(frame, fractions=fractions, seed=seed, strata=strata)


def load_cohort(store, conditions: Mapping[str, Any], *, task: str | None = None, label_column: str | None = None,
                sample_ratio: float | None = None, sample_size: int | None = None, split_by: str | None = "donor",
                split_fractions=DEFAULT_FRACTIONS, balance: bool = True, min_class_size: int = 10,
                seed: int = 2025, shuffle: bool = False, normalize: bool = True,
                correction_method: str | None = None) -> Cohort:
    """Select, balance and split a cohort from a store.

    Parameters
    ----------
    store
        A :class:`~celltosg.store.TOSGStore` or its path.
    conditions
        Field -> value(s), as for :func:`~celltosg.loader.query`.
    task
        ``"disease"`` (cases against ``normal`` controls of the same other conditions, matched on cell type,
        sex and age stage), ``"sex"`` (female against male, matched on cell type and age stage),
        ``"cell_type"`` (junk labels dropped, classes with fewer than ``min_class_size`` rows or without a
        donor in every split dropped) or ``"pretrain"`` / None (rows as queried).
    label_column
        Obs column (or alias) to encode as labels; defaults to the task's column.
    sample_ratio, sample_size
        At most one; sub-samples the cases (balanced tasks) or the rows, per label, with ``seed``.
    split_by
        ``"donor"`` (default; a donor is (dataset_id, donor_id)), ``"cell"`` (stratified by label, warns
        that estimates are optimistic) or None (no split: every row in split ``"all"``).
    split_fractions
        (train, val, test) shares of rows; val may be 0.
    balance
        Match controls to cases (disease, sex); False keeps every case and control.
    seed
        Seed of every random step (sampling, matching, splitting, shuffling).
    shuffle
        Shuffle row order; otherwise rows are in store order within each split.
    normalize, correction_method
        Library-size 1e4 + log1p normalisation; None, ``"combat_seq"`` (counts) or ``"combat"`` (log values),
        run per tissue group on each split separately.
    """
    task = check_task(task)
    check_sampling(sample_ratio, sample_size)
    check_method(correction_method)
    if split_by not in SPLIT_MODES:
        raise QueryError(f"split_by={split_by!r}; choose 'donor', 'cell' or None.")
    fractions = check_fractions(split_fractions)
    store = open_store(store)
    store.kg  # noqa: B018 - fails early, naming both checksums, when the pack differs from the store's
    pool = query(store, conditions)
    column = resolve_field(label_column, store.obs.columns) if label_column else LABEL_COLUMNS[task]
    frame = _task_rows(store, conditions, pool, task, balance=balance, sample_ratio=sample_ratio,
                       sample_size=sample_size, seed=seed, min_class_size=min_class_size)
    frame = frame.rename_axis("position").reset_index()
    frame = frame.sort_values("position", kind="stable").reset_index(drop=True)
    if column is not None:
        missing = is_missing(frame[column])
        if missing.all():
            raise QueryError(f"no row of the cohort has a {column!r} label.")
        if missing.any() and column != "disease":
            logger.warning("dropping %d rows without a %s label", int(missing.sum()), column)
            frame = frame[~missing].reset_index(drop=True)
        frame["label"] = frame[column].astype("string").fillna("unknown")
    strata = "label" if column is not None else None
    if split_by == "donor":
        frame["split"] = _donor_split(frame, task, fractions=fractions, seed=seed, strata=strata)
    elif split_by == "cell":
        frame["split"] = split_by_cell(frame, fractions=fractions, seed=seed, strata=strata,
                                       positions=frame["position"].to_numpy())
    else:
        frame["split"] = "all"
    if task == "cell_type" and split_by is not None:
        frame = _drop_classes_missing_from_a_split(frame, [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0])
    if shuffle:
        frame = frame.iloc[np.random.default_rng(seed).permutation(len(frame))]
    mapping = label_mapping(frame["label"], column) if column is not None else None
    covariate = "label" if column is not None else ("disease" if "disease" in frame.columns else None)
    cohort = Cohort(store, frame, task=task, label_column=column, label_mapping=mapping, normalize=normalize,
                    correction_method=correction_method, covariate=covariate)
    logger.info("%r", cohort)
    return cohort



