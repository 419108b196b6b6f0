"""Train and evaluate every model on the same splits, tuning each on validation data with one budget."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.baselines import Classifier, accuracy, macro_f1
from celltosg.errors import CellTOSGError
from celltosg.evaluation._donors import donor_metrics
from celltosg.evaluation._memory import measure_peak_memory
from celltosg.evaluation._split import Split
from celltosg.io_utils import atomic_file
from celltosg.progress import progress

logger = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "task", "model", "seed", "status", "accuracy", "macro_f1", "donor_accuracy", "donor_auroc", "val_macro_f1",
    "train_s", "tune_s", "peak_mem_mb", "params", "n_train", "n_val", "n_test", "n_genes", "n_classes", "device",
)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the benchmark: how to build one for a split, and its hyperparameter grid.

    ``build(split, params, seed)`` returns an unfitted :class:`~celltosg.baselines.Classifier`.
    Every spec of a run has a grid of the same length (the tuning budget).
    """

    name: str
    build: Callable[[Split, dict, int], Classifier]
    grid: tuple[dict, ...]
    needs_graph: bool = False
    description: str = ""


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, MemoryError | torch.OutOfMemoryError)


def evaluate_spec(spec: ModelSpec, split: Split, *, seed: int, task: str = "") -> dict:
    """Fit every grid point of ``spec`` on ``split``, pick the best validation macro-F1, score it on test.

    Returns one result row (keys :data:`RESULT_COLUMNS`); ``donor_accuracy`` / ``donor_auroc`` score
    donor calls (mean test probabilities per donor) when the split names donors with one label each.
    ``train_s`` and ``peak_mem_mb`` belong to the chosen configuration's fit (``train_s`` includes work a model reused from an earlier grid point, such
    as a cached pretraining, reported as its ``untimed_seconds``); ``tune_s`` is the time of the grid. Running out of memory gives a
    row with status ``out of memory`` and empty metrics.
    """
    row = {"task": task, "model": spec.name, "seed": seed, **split.sizes(),
           "n_genes": split.n_genes, "n_classes": split.n_classes, "device": _device_name()}
    best = None
    tune_start = time.perf_counter()
    for params in spec.grid:
        try:
            model = spec.build(split, dict(params), seed)
            with measure_peak_memory() as memory:
                start = time.perf_counter()
                model.fit(split.X_train, split.y_train, split.X_val, split.y_val)
                seconds = time.perf_counter() - start + getattr(model, "untimed_seconds", 0.0)
            val_score = macro_f1(split.y_val, model.predict(split.X_val), split.n_classes)
        except Exception as error:
            if not _is_out_of_memory(error):
                raise
            logger.warning("%s %s: out of memory (%s)", spec.name, params, error)
            model = None
            _release_cuda()
            continue
        logger.debug("%s seed %d %s: val macro-F1 %.4f in %.1f s", spec.name, seed, params, val_score, seconds)
        if best is None or val_score > best[0]:
            best = (val_score, model, params, seconds, memory.peak_mb)
        model = None
    row["tune_s"] = time.perf_counter() - tune_start
    if best is None:
        return {**row, "status": "out of memory"}
    val_score, model, params, seconds, peak = best
    proba = np.asarray(model.predict_proba(split.X_test))
    y_pred = proba.argmax(axis=1)
    if split.donors is not None:
        row.update(donor_metrics(proba, split.y_test, split.donors["test"]))
    return {
        **row, "status": "ok", "accuracy": accuracy(split.y_test, y_pred),
        "macro_f1": macro_f1(split.y_test, y_pred, split.n_classes), "val_macro_f1": val_score,
        "train_s": seconds, "peak_mem_mb": peak, "params": json.dumps(params, sort_keys=True),
    }


def _device_name() -> str:
    """``cuda:<name>`` when torch sees a GPU, else ``cpu:<n threads>``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name()}"
    return f"cpu:{torch.get_num_threads()} threads"


def _release_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_budget(specs: Sequence[ModelSpec]) -> int:
    """The common grid size of ``specs``; unequal tuning budgets are an error."""
    sizes = {spec.name: len(spec.grid) for spec in specs}
    if len(set(sizes.values())) > 1:
        raise CellTOSGError(f"every model needs the same tuning budget; grid sizes differ: {sizes}")
    return next(iter(sizes.values()), 0)


def run_benchmark(
    make_split: Callable[[int], Split], specs: Sequence[ModelSpec], *, seeds: Sequence[int], task: str = "",
    partial_csv: str | Path | None = None,
) -> pd.DataFrame:
    """Evaluate every spec on ``make_split(seed)`` for each seed; one row per (seed, model).

    All models of a seed share one split (same cells, genes and normalisation); the seed also seeds
    each model's fit. Graph models are skipped (status ``no graph``) when the split has no graph.
    With ``partial_csv`` the rows so far are rewritten there after every model (survives interruption).
    """
    check_budget(specs)
    rows = []
    jobs = [(seed, spec) for seed in seeds for spec in specs]
    split, split_seed = None, None
    for seed, spec in progress(jobs, description=f"benchmark {task}".strip()):
        if seed != split_seed:
            split, split_seed = make_split(seed), seed
        if spec.needs_graph and split.kg is None:
            rows.append({"task": task, "model": spec.name, "seed": seed, "status": "no graph"})
            continue
        row = evaluate_spec(spec, split, seed=seed, task=task)
        logger.info("%s seed %d: accuracy %.4f, macro-F1 %.4f", spec.name, seed,
                    row.get("accuracy", np.nan), row.get("macro_f1", np.nan))
        rows.append(row)
        if partial_csv is not None:
            with atomic_file(partial_csv) as tmp:
                pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS)).to_csv(tmp, index=False)
    return pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
