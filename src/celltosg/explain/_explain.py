"""``explain``: class-contrastive importance of one class -> core subgraph -> enrichment -> files and figures."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from celltosg.errors import CellTOSGError, UnknownIdentifierError
from celltosg.explain._attribution import baseline_profile
from celltosg.explain._enrichment import enrichment
from celltosg.explain._html import write_html
from celltosg.explain._importance import DEFAULT_METHOD, METHODS, Importance, contrast, importance
from celltosg.explain._plots import plot_enrichment, plot_subgraph
from celltosg.explain._subgraph import CoreSubgraph, core_subgraph

if TYPE_CHECKING:
    import torch

    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)

OUTPUT_FILES = ("scores.csv", "nodes.csv", "edges.csv", "subgraph.graphml", "enrichment.csv", "subgraph.png",
                "subgraph.svg", "subgraph.html", "enrichment.png", "summary.json")


@dataclasses.dataclass
class ExplainResult:
    """What :func:`explain` computed and where it wrote it.

    Attributes
    ----------
    importance
        Node (N,) and, for attention, edge (E,) scores.
    subgraph
        The core subgraph.
    enrichment
        The enrichment table of the subgraph's genes.
    files
        Output name -> path (see :data:`OUTPUT_FILES`).
    summary
        The contents of ``summary.json``.
    """

    importance: Importance
    subgraph: CoreSubgraph
    enrichment: pd.DataFrame
    files: dict[str, Path]
    summary: dict


def _cells(X: np.ndarray, labels: np.ndarray, mapping: Mapping[str, int], label: str, max_cells: int | None,
           seed: int) -> tuple[np.ndarray, int]:
    if label not in mapping:
        raise UnknownIdentifierError(f"class {label!r} is not one of the model's classes {sorted(mapping)}; "
                                     "pass one of those")
    rows = np.flatnonzero(np.asarray(labels) == mapping[label])
    if rows.size == 0:
        raise CellTOSGError(f"no cells of class {label!r} in the data to explain; widen the selection")
    if max_cells is not None and rows.size > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_cells, replace=False))
    return np.asarray(X[rows], dtype=np.float32), int(mapping[label])


def scores_table(kg: KnowledgeGraph, imp: Importance) -> pd.DataFrame:
    """Every node's score and rank: ``node_index, node_id, type, symbol, score, rank``, best first.

    ``rank`` is 1 for the most important node and 0 for unscored (NaN) nodes, which come last.
    """
    ranking = imp.ranking()
    order = np.lexsort((np.arange(kg.n_nodes), -np.nan_to_num(ranking, nan=-np.inf)))
    table = kg.nodes.iloc[order][["node_id", "type", "symbol"]].copy()
    table.insert(0, "node_index", order)
    table["score"] = imp.node[order]
    table["rank"] = np.where(np.isfinite(ranking[order]), np.arange(1, kg.n_nodes + 1), 0)
    return table.reset_index(drop=True)


def explain(
    model: torch.nn.Module,
    X: np.ndarray,
    labels: np.ndarray,
    label_mapping: Mapping[str, int],
    kg: KnowledgeGraph,
    *,
    class_label: str,
    out_dir: str | os.PathLike,
    top_k: int = 120,
    contrast_label: str | None = None,
    method: str = DEFAULT_METHOD,
    baseline: str | np.ndarray = "mean",
    baseline_rows: np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    rule: str = "received",
    max_cells: int | None = 2000,
    batch_size: int = 8,
    n_steps: int = 24,
    seed: int = 0,
    overwrite: bool = True,
) -> ExplainResult:
    """Explain what makes ``class_label`` this class for the model, and write tables and figures to ``out_dir``.

    Parameters
    ----------
    model
        A fine-tuned CellTOSG-FM (``model.graph`` describes the graph it was built on).
    X
        (n, n_rna) model inputs of the cohort (normalised expression; columns = the RNA nodes of ``kg``).
    labels
        (n,) integer class per row; ``label_mapping`` maps class names to those integers.
    kg
        The cohort's knowledge graph (its RNA nodes are the measured genes: the enrichment background).
    class_label
        The class to explain.
    contrast_label
        None (default): class-contrastive, the class logit minus the mean of the other logits (attention:
        the class's cells minus the other cells). A class name: the class logit minus that class's logit
        (attention: the class's cells minus that class's cells).
    top_k
        Most nodes of the core subgraph (seeds plus connectors).
    method
        One of :data:`~celltosg.explain.METHODS` (default :data:`~celltosg.explain.DEFAULT_METHOD`).
    baseline
        Reference profile of the gradient methods: ``"mean"`` (the mean profile of all rows of ``X``),
        ``"zeros"`` or an (n_rna,) array.
    baseline_rows
        Indices of the rows of ``X`` the ``"mean"`` baseline averages (default: all rows).
    layers, rule
        Attention layers and node rule.
    max_cells
        At most this many cells per group (a seeded random subset), None = all.
    n_steps
        Quadrature points of integrated gradients.

    Returns
    -------
    ExplainResult
        Files: :data:`OUTPUT_FILES`.
    """
    from celltosg.io_utils import atomic_dir

    graph = model.graph
    if graph.n_rna + graph.n_protein != kg.n_nodes or graph.n_rna != kg.n_rna:
        raise CellTOSGError(
            f"the model's graph has {graph.n_rna} RNA + {graph.n_protein} protein nodes but the knowledge graph "
            f"{kg.name!r} has {kg.n_rna} + {kg.n_protein}; explain with the graph the model was trained on"
        )
    if np.shape(X)[1] != kg.n_rna:
        raise CellTOSGError(f"X has {np.shape(X)[1]} columns but the graph has {kg.n_rna} RNA nodes; "
                            "give the cohort's model inputs")
    if method not in METHODS:
        raise CellTOSGError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    cells, class_index = _cells(X, labels, label_mapping, class_label, max_cells, seed)
    contrast_index = None
    if contrast_label == class_label:
        raise CellTOSGError(f"--contrast {contrast_label!r} is the explained class; compare with another class")
    if contrast_label is not None:
        _, contrast_index = _cells(X, labels, label_mapping, contrast_label, max_cells, seed)
    log.info("explaining %d cells of class %r (%s)", len(cells), class_label, method)
    n_reference = 0
    if method == "attention":
        imp = importance(model, cells, method=method, layers=layers, rule=rule, batch_size=batch_size)
        ref_cells = _other_cells(X, labels, class_index, contrast_index, max_cells, seed)
        n_reference = len(ref_cells)
        imp = contrast(imp, importance(model, ref_cells, method=method, layers=layers, rule=rule,
                                       batch_size=batch_size))
    else:
        profile = baseline_profile(X if baseline_rows is None else X[baseline_rows], baseline)
        imp = importance(model, cells, method=method, class_index=class_index, contrast_index=contrast_index,
                         baseline=profile, batch_size=batch_size, n_steps=n_steps)
    sub = core_subgraph(kg, imp.node, top_k, ranking=imp.ranking(), edge_index=imp.edge_index,
                        edge_scores=imp.edge)
    table = enrichment(sub.genes, kg.rna_symbols, kg.genesets)
    roles = sub.nodes["role"].value_counts()
    summary = {
        "class": class_label, "contrast": contrast_label or "mean of the other classes", "method": imp.method,
        "baseline": (baseline if isinstance(baseline, str) else "given profile") if method != "attention" else None,
        "node_rule": rule if method == "attention" else None,
        "layers": None if layers is None else list(layers), "n_cells": imp.n_cells, "n_reference_cells": n_reference,
        "top_k": top_k, "n_nodes": int(roles.get("seed", 0) + roles.get("connector", 0)),
        "n_seeds": int(roles.get("seed", 0)), "n_connectors": int(roles.get("connector", 0)),
        "n_unconnected": int(roles.get("unconnected", 0)),
        "n_edges": len(sub.edges), "n_genes": len(sub.genes), "background_size": int(len(set(kg.rna_symbols))),
        "n_terms_q05": int((table["q"] < 0.05).sum()), "kg": kg.name, "kg_checksum": kg.checksum,
        "top_genes": top_genes(kg, imp, 20),
    }  # fmt: skip
    title = f"{class_label} vs {contrast_label or 'rest'} ({imp.method})"
    out = Path(out_dir)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        scores_table(kg, imp).to_csv(tmp / "scores.csv", index=False)
        sub.nodes.to_csv(tmp / "nodes.csv", index=False)
        sub.edges.to_csv(tmp / "edges.csv", index=False)
        _write_graphml(sub, tmp / "subgraph.graphml")
        table.to_csv(tmp / "enrichment.csv", index=False)
        plot_subgraph(sub, tmp / "subgraph", title=f"core subgraph: {title}", seed=seed)
        plot_enrichment(table, tmp / "enrichment", title=f"enrichment: {title}")
        write_html(sub, table, kg, tmp / "subgraph.html", title=f"core subgraph: {title}", seed=seed)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    files = {name: out / name for name in OUTPUT_FILES}
    return ExplainResult(importance=imp, subgraph=sub, enrichment=table, files=files, summary=summary)


def _other_cells(X: np.ndarray, labels: np.ndarray, class_index: int, contrast_index: int | None,
                 max_cells: int | None, seed: int) -> np.ndarray:
    """The reference cells of a class-contrastive attention score: the contrast class, or every other class."""
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels == contrast_index if contrast_index is not None else labels != class_index)
    if rows.size == 0:
        raise CellTOSGError("no cells outside the explained class to contrast with; widen the selection")
    if max_cells is not None and rows.size > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_cells, replace=False))
    return np.asarray(X[rows], dtype=np.float32)


def top_genes(kg: KnowledgeGraph, imp: Importance, n: int) -> list[dict]:
    """The ``n`` best genes (best node per symbol): ``[{"symbol", "score", "rank"}, ...]``, best first."""
    table = scores_table(kg, imp)
    table = table[(table["rank"] > 0) & table["symbol"].fillna("").astype(str).ne("")]
    table = table.drop_duplicates("symbol").head(n)
    return [{"symbol": str(r.symbol), "score": float(r.score), "rank": int(r.rank)} for r in table.itertuples()]


def _write_graphml(sub: CoreSubgraph, path: Path) -> None:
    import networkx as nx

    nx.write_graphml(sub.to_networkx(), path)
