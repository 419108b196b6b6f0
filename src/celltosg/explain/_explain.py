"""``explain``: importance of one class (optionally against a reference) -> core subgraph -> enrichment -> files."""

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
from celltosg.explain._enrichment import enrichment
from celltosg.explain._importance import Importance, contrast, importance
from celltosg.explain._plots import plot_enrichment, plot_subgraph
from celltosg.explain._subgraph import CoreSubgraph, core_subgraph

if TYPE_CHECKING:
    import torch

    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)

OUTPUT_FILES = ("scores.csv", "nodes.csv", "edges.csv", "subgraph.graphml", "enrichment.csv", "subgraph.png",
                "subgraph.svg", "enrichment.png", "summary.json")


@dataclasses.dataclass
class ExplainResult:
    """What :func:`explain` computed and where it wrote it.

    Attributes
    ----------
    importance
        Node (N,) and edge (E,) scores (a contrast when a reference was given).
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
    reference_label: str | None = None,
    method: str = "auto",
    layers: Sequence[int] | None = None,
    rule: str = "received",
    max_cells: int | None = 2000,
    batch_size: int = 8,
    seed: int = 0,
    overwrite: bool = True,
) -> ExplainResult:
    """Explain what the model relies on for ``class_label`` and write tables and figures to ``out_dir``.

    Parameters
    ----------
    model
        A fine-tuned CellTOSG-FM (``model.graph`` describes the graph it was built on).
    X
        (n, n_rna) model inputs (normalised expression; columns = the RNA nodes of ``kg``).
    labels
        (n,) integer class per row; ``label_mapping`` maps class names to those integers.
    kg
        The cohort's knowledge graph (its RNA nodes are the measured genes: the enrichment background).
    class_label
        The class to explain.
    reference_label
        When given, score ``class - reference`` (contrast mode) and rank by magnitude.
    top_k
        Seed nodes of the core subgraph.
    method, layers, rule
        Importance method (``auto`` | ``attention`` | ``gradient_x_input``), attention layers, node rule.
    max_cells
        At most this many cells per group (a seeded random subset), None = all.

    Returns
    -------
    ExplainResult
        Files: scores.csv (all nodes), nodes.csv, edges.csv, subgraph.graphml, enrichment.csv,
        subgraph.png, subgraph.svg, enrichment.png, summary.json.
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
    cells, class_index = _cells(X, labels, label_mapping, class_label, max_cells, seed)
    log.info("explaining %d cells of class %r", len(cells), class_label)
    imp = importance(model, cells, method=method, class_index=class_index, layers=layers, rule=rule,
                     batch_size=batch_size)
    n_reference = 0
    if reference_label is not None:
        ref_cells, _ = _cells(X, labels, label_mapping, reference_label, max_cells, seed)
        n_reference = len(ref_cells)
        log.info("contrasting with %d cells of class %r", n_reference, reference_label)
        ref = importance(model, ref_cells, method=imp.method, class_index=class_index, layers=layers, rule=rule,
                         batch_size=batch_size)
        imp = contrast(imp, ref)
    sub = core_subgraph(kg, imp.node, top_k, ranking=imp.ranking(), edge_index=imp.edge_index,
                        edge_scores=imp.edge)
    table = enrichment(sub.genes, kg.rna_symbols, kg.genesets)
    summary = {
        "class": class_label, "reference": reference_label, "method": imp.method, "node_rule": rule,
        "layers": None if layers is None else list(layers), "n_cells": imp.n_cells, "n_reference_cells": n_reference,
        "top_k": top_k, "n_nodes": len(sub.nodes), "n_connectors": int((sub.nodes["role"] == "connector").sum()),
        "n_edges": len(sub.edges), "n_genes": len(sub.genes), "background_size": int(len(set(kg.rna_symbols))),
        "n_terms_q05": int((table["q"] < 0.05).sum()), "kg": kg.name, "kg_checksum": kg.checksum,
    }  # fmt: skip
    title = f"{class_label}" + (f" vs {reference_label}" if reference_label else "") + f" ({imp.method})"
    out = Path(out_dir)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        scores_table(kg, imp).to_csv(tmp / "scores.csv", index=False)
        sub.nodes.to_csv(tmp / "nodes.csv", index=False)
        sub.edges.to_csv(tmp / "edges.csv", index=False)
        _write_graphml(sub, tmp / "subgraph.graphml")
        table.to_csv(tmp / "enrichment.csv", index=False)
        plot_subgraph(sub, tmp / "subgraph", title=f"core subgraph: {title}", seed=seed)
        plot_enrichment(table, tmp / "enrichment", title=f"enrichment: {title}")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    files = {name: out / name for name in OUTPUT_FILES}
    return ExplainResult(importance=imp, subgraph=sub, enrichment=table, files=files, summary=summary)


def _write_graphml(sub: CoreSubgraph, path: Path) -> None:
    import networkx as nx

    nx.write_graphml(sub.to_networkx(), path)
