"""The data every model of a benchmark sees: one train / val / test split over one gene set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from celltosg.errors import MalformedInputError, SplitError

logger = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Log-normalised expression and integer labels per part, shared by every model of a run.

    ``X_*`` float32 (n_part, G), ``y_*`` int64 (n_part,) in ``0..C-1``; ``genes`` (G,) names the columns;
    ``label_names`` (C,) names the classes. ``kg``, when set, is a knowledge graph whose RNA node ``i``
    is column ``i`` (graph models need it); ``node_features``, when set, holds its nodes' precomputed
    frozen features (text (N, T), sequence (N, S), sequence mask (N,)); ``donors``, when set, maps each
    part to its rows' donor ids (n_part,) (donor-level metrics need it).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    genes: np.ndarray
    label_names: list[str]
    kg: object | None = None
    meta: dict = field(default_factory=dict)
    node_features: tuple | None = None
    donors: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        n_genes = len(self.genes)
        for part in PARTS:
            X, y = self.part(part)
            if X.ndim != 2 or X.shape[1] != n_genes:
                raise MalformedInputError(f"Split.X_{part} has shape {X.shape}; expected (n, {n_genes})")
            if y.shape != (X.shape[0],):
                raise MalformedInputError(f"Split.y_{part} has {len(y)} labels for {X.shape[0]} rows")
            if len(y) == 0:
                raise SplitError(f"the {part} part of the split is empty; use more cells or donors")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise MalformedInputError(f"Split.y_{part} must lie in 0..{self.n_classes - 1}")
            if self.donors is not None and len(self.donors[part]) != len(y):
                raise MalformedInputError(f"Split.donors[{part!r}] has {len(self.donors[part])} ids for {len(y)} rows")
        if self.kg is not None and getattr(self.kg, "n_rna", n_genes) != n_genes:
            raise MalformedInputError(
                f"the split's graph has {self.kg.n_rna} RNA nodes for {n_genes} genes; "
                "restrict the columns to the graph with align_to_kg"
            )

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of ``train``, ``val`` or ``test``."""
        if name not in PARTS:
            raise MalformedInputError(f"unknown split part {name!r}; choose one of {PARTS}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")

    def sizes(self) -> dict[str, int]:
        return {f"n_{p}": len(self.part(p)[1]) for p in PARTS}


def stratified_cell_split(
    labels: np.ndarray, *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> np.ndarray:
    """Assign each cell to ``train`` / ``val`` / ``test`` per class at random, seeded.

    Every class gets at least one validation and one test cell; classes with fewer than 3 cells are an
    error. Returns an object array (n,) of part names. This is not :func:`celltosg.loader.split_by_cell`
    (meta-cell copies kept together, whole-split rounding): the PBMC figures in ``docs/benchmarks.md``
    were drawn with this per-class draw, and that one would give other splits.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        if len(rows) < 3:
            raise SplitError(
                f"class {label!r} has {len(rows)} cells; a split needs at least 3 per class; drop it first"
            )
        n_test = max(1, round(test_fraction * len(rows)))
        n_val = max(1, round(val_fraction * len(rows)))
        parts[rows[:n_test]] = "test"
        parts[rows[n_test : n_test + n_val]] = "val"
        parts[rows[n_test + n_val :]] = "train"
    return parts


def align_to_kg(X: np.ndarray, genes, kg) -> tuple[np.ndarray, np.ndarray, object]:
    """Keep the columns whose gene maps to the graph (first column per node), in column order.

    Returns ``(X (n, G'), genes (G',), subgraph)`` with RNA node ``i`` of the subgraph = column ``i``.
    """
    genes = np.asarray(genes).astype(str)
    nodes = kg.map_genes(genes).rna_index
    _, first = np.unique(nodes, return_index=True)
    columns = np.sort(first[nodes[first] >= 0])
    if not len(columns):
        raise MalformedInputError(
            f"none of the {len(genes)} genes maps to the knowledge graph {kg.name!r}; check the gene identifiers"
        )
    logger.info("aligned %d of %d genes to the knowledge graph", len(columns), len(genes))
    return np.asarray(X)[:, columns], genes[columns], kg.subgraph(nodes[columns])


def split_from_anndata(
    adata, *, label_key: str, seed: int, kg=None, use_raw: bool = False, min_cells: int = 3
) -> Split:
    """A stratified by-cell split of an AnnData of log-normalised values (``.X`` or ``.raw.X``).

    Classes with fewer than ``min_cells`` cells are dropped. With ``kg`` the genes are restricted to
    those in the graph (same columns for every model).
    """
    import scipy.sparse as sp

    if label_key not in adata.obs:
        raise MalformedInputError(
            f"label column {label_key!r} is not in adata.obs (columns: {list(adata.obs.columns)[:20]})"
        )
    source = adata.raw if use_raw else adata
    X = source.X.toarray() if sp.issparse(source.X) else np.asarray(source.X)
    X = X.astype(np.float32)
    genes = np.asarray(source.var_names).astype(str)
    labels = adata.obs[label_key].astype(str).to_numpy()
    names, counts = np.unique(labels, return_counts=True)
    keep_names = names[counts >= min_cells]
    if len(keep_names) < len(names):
        logger.warning("dropped %d classes with fewer than %d cells", len(names) - len(keep_names), min_cells)
    rows = np.isin(labels, keep_names)
    X, labels = X[rows], labels[rows]
    if kg is not None:
        X, genes, kg = align_to_kg(X, genes, kg)
    codes = np.searchsorted(keep_names, labels).astype(np.int64)
    parts = stratified_cell_split(codes, seed=seed)
    pick = {p: parts == p for p in PARTS}
    return Split(
        X[pick["train"]], codes[pick["train"]], X[pick["val"]], codes[pick["val"]],
        X[pick["test"]], codes[pick["test"]], genes=genes, label_names=[str(n) for n in keep_names], kg=kg,
        meta={"split_by": "cell", "seed": seed, "label_key": label_key},
    )


def split_from_cohort(cohort) -> Split:
    """The loader's :class:`~celltosg.loader.Cohort` (its own split, genes and normalisation) as a Split."""
    mapping = cohort.label_mapping
    names = [name for name, _ in sorted(mapping.items(), key=lambda kv: kv[1])]
    arrays = {}
    for part in PARTS:
        arrays[f"X_{part}"] = np.asarray(cohort.X(part), dtype=np.float32)
        arrays[f"y_{part}"] = np.asarray(cohort.labels(part), dtype=np.int64)
    obs, donors = cohort.obs, None
    if {"dataset_id", "donor_id"} <= set(obs.columns):  # a donor is (dataset_id, donor_id), as in the split
        donor = (obs["dataset_id"].astype(str) + "/" + obs["donor_id"].astype(str)).to_numpy()
        donors = {part: donor[obs["split"].to_numpy() == part] for part in PARTS}
    kg = cohort.kg
    return Split(**arrays, genes=np.asarray(kg.rna_symbols).astype(str), label_names=names, kg=kg,
                 meta={"split_by": "cohort"}, donors=donors)
