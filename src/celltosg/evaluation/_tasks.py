"""Where a benchmark's splits come from: a TOSG store through the loader, an AnnData, or embedded PBMC."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from celltosg.errors import MalformedInputError, QueryError
from celltosg.evaluation._split import Split, split_from_anndata, split_from_cohort

logger = logging.getLogger(__name__)

PBMC68K = "pbmc68k"


def store_splits(store, conditions: Mapping[str, Any], *, task: str, split_by: str = "donor",
                 correction_method: str | None = None, **load_options) -> Callable[[int], Split]:
    """``seed -> Split`` from :func:`celltosg.loader.load_cohort` (its balancing, split, normalisation).

    Every model of a seed sees the cohort's own genes (its graph's RNA nodes) and values.
    """
    from celltosg.loader import load_cohort, open_store

    store = open_store(store)

    def make(seed: int) -> Split:
        cohort = load_cohort(store, dict(conditions), task=task, split_by=split_by, seed=seed,
                             correction_method=correction_method, **load_options)
        split = split_from_cohort(cohort)
        split.meta.update(task=task, split_by=split_by, seed=seed, conditions=dict(conditions))
        logger.info("seed %d: %s, %d genes, classes %s", seed, split.sizes(), split.n_genes, split.label_names)
        return split

    return make


def anndata_splits(adata, *, label_key: str, kg="human", task: str = "cell_type") -> Callable[[int], Split]:
    """``seed -> Split``: stratified by-cell splits of an AnnData of log-normalised values, genes restricted
    to the knowledge graph (``kg``: pack name, directory or KnowledgeGraph; None keeps every gene)."""
    import anndata as ad

    from celltosg.kg import KnowledgeGraph
    from celltosg.loader import TASKS

    if task not in TASKS or task == "pretrain":
        raise QueryError(f"unknown task {task!r} for labelled cells; choose one of "
                         f"{', '.join(t for t in TASKS if t != 'pretrain')}")
    if isinstance(adata, str | Path):
        path = Path(adata)
        if not path.is_file():
            raise MalformedInputError(f"{path} is not a file; give a .h5ad file, a store directory or '{PBMC68K}'")
        adata = ad.read_h5ad(path)
    graph = kg if kg is None or isinstance(kg, KnowledgeGraph) else KnowledgeGraph.load(kg)

    def make(seed: int) -> Split:
        split = split_from_anndata(adata, label_key=label_key, seed=seed, kg=graph)
        split.meta.update(task=task)
        return split

    return make


def pbmc68k_splits(kg="human") -> Callable[[int], Split]:
    """``seed -> Split`` of scanpy's embedded 700 PBMC cells (10 ``cell_type`` labels), split by cell."""
    from celltosg.datasets import pbmc68k

    return anndata_splits(pbmc68k(), label_key="cell_type", kg=kg, task="cell_type")
