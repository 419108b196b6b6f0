"""Explain a saved checkpoint on the cells of a TOSG store that match a query."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from celltosg.errors import CellTOSGError, CheckpointError, UnknownIdentifierError
from celltosg.explain._explain import ExplainResult, explain
from celltosg.explain._importance import DEFAULT_METHOD, METHODS

log = logging.getLogger(__name__)


def _sample(rows: np.ndarray, max_cells: int | None, seed: int) -> np.ndarray:
    if max_cells is None or rows.size <= max_cells:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_cells, replace=False))


def explain_store(
    checkpoint: str | os.PathLike,
    store: Any,
    conditions: Mapping[str, Any],
    *,
    class_label: str,
    out_dir: str | os.PathLike,
    top_k: int = 120,
    contrast_label: str | None = None,
    max_cells: int | None = 2000,
    method: str = DEFAULT_METHOD,
    baseline: str = "mean",
    layers: Sequence[int] | None = None,
    rule: str = "received",
    batch_size: int = 8,
    n_steps: int = 24,
    seed: int = 0,
) -> ExplainResult:
    """Load a fine-tuned checkpoint, read the matching cells of ``store`` and :func:`explain` a class.

    The model's inputs are built as the loader builds them for training: the checkpoint's genes (matched to
    store columns by node id; genes absent from the store are zero), library size 1e4 + log1p over those
    genes. Batch correction is not applied. Labels come from the obs column of the checkpoint's task. The
cells read are the class's, the contrast class's and a seeded random sample of the matching cells of
every class (the cohort: its mean profile is the ``"mean"`` baseline, its other classes the reference
of class-contrastive attention), each at most ``max_cells``.

    Parameters
    ----------
    checkpoint
        A fine-tuning checkpoint (``celltosg.train``).
    store
        A :class:`~celltosg.store.TOSGStore` or its path.
    conditions
        Field -> value(s) selecting the cells (:func:`celltosg.loader.query`).
    class_label, contrast_label, top_k, method, baseline, layers, rule, batch_size, n_steps, seed
        As for :func:`explain`.
    max_cells
        At most this many cells per group, a seeded random subset (read from the store only once chosen).
    """
    from celltosg.kg import KnowledgeGraph
    from celltosg.loader import LABEL_COLUMNS, normalize_log1p, query, read_columns
    from celltosg.store import TOSGStore
    from celltosg.train import build_model, load_checkpoint

    if method not in METHODS:  # before any reading
        raise CellTOSGError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    payload = load_checkpoint(checkpoint)
    mapping = dict(payload["label_mapping"])
    if not mapping:
        raise CheckpointError(f"checkpoint {checkpoint} has no task head (a pretrained encoder); explain a "
                              "fine-tuned checkpoint")
    model, _, _ = build_model(payload, path=checkpoint)
    pack = payload["pack"]
    pack = KnowledgeGraph.load_version(pack["path"] or pack["name"], pack["checksum"], user=f"checkpoint {checkpoint}")
    kg = pack.subgraph(pack.rna_positions(payload["rna_node_ids"]))
    store = store if isinstance(store, TOSGStore) else TOSGStore.open(store)
    column = LABEL_COLUMNS.get(payload["task"])
    if column is None:
        raise CheckpointError(f"checkpoint {checkpoint} was trained for task {payload['task']!r}, which has no "
                              "classes to explain")
    rows = query(store, conditions)
    labels = rows[column].astype("string").map(mapping).fillna(-1).to_numpy(dtype=np.int64)
    wanted = [class_label] + ([contrast_label] if contrast_label is not None else [])
    for label in wanted:
        if label not in mapping:
            raise UnknownIdentifierError(f"class {label!r} is not one of the model's classes {sorted(mapping)}")
    cohort = _sample(np.flatnonzero(labels >= 0), max_cells, seed)
    chosen = np.unique(np.concatenate([cohort] + [_sample(np.flatnonzero(labels == mapping[label]), max_cells, seed)
                                                  for label in wanted]))
    store_column = {node_id: i for i, node_id in enumerate(store.var["node_id"].astype(str))}
    columns = np.array([store_column.get(node_id, -1) for node_id in payload["rna_node_ids"]], dtype=np.int64)
    present = columns >= 0
    if not present.all():
        log.warning("%d of the model's %d genes are not in the store; they are set to zero",
                    int((~present).sum()), len(columns))
    X = np.zeros((len(chosen), len(columns)), dtype=np.float32)
    if len(chosen):
        X[:, present] = normalize_log1p(read_columns(store, rows.index.to_numpy()[chosen], columns[present]))
    log.info("explaining %s on %d cells of %s", payload["task"], len(chosen), store)
    return explain(model, X, labels[chosen], mapping, kg, class_label=class_label, out_dir=out_dir, top_k=top_k,
                   contrast_label=contrast_label, method=method, baseline=baseline,
                   baseline_rows=np.searchsorted(chosen, cohort), layers=layers, rule=rule,
                   max_cells=max_cells, batch_size=batch_size, n_steps=n_steps, seed=seed)
