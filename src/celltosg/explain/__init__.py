"""Explanations: node/edge importance, the top-k core subgraph, enrichment and figures."""

from __future__ import annotations

from celltosg.explain._enrichment import COLLECTIONS, benjamini_hochberg, enrichment
from celltosg.explain._explain import OUTPUT_FILES, ExplainResult, explain, scores_table
from celltosg.explain._from_store import explain_store
from celltosg.explain._importance import (
    NODE_RULES,
    Importance,
    attention_importance,
    contrast,
    gradient_importance,
    importance,
    merge_edges,
    node_attention,
    select_layers,
)
from celltosg.explain._plots import plot_enrichment, plot_subgraph
from celltosg.explain._subgraph import CoreSubgraph, connectors, core_subgraph, top_nodes

__all__ = [
    "COLLECTIONS",
    "NODE_RULES",
    "OUTPUT_FILES",
    "CoreSubgraph",
    "ExplainResult",
    "Importance",
    "attention_importance",
    "benjamini_hochberg",
    "connectors",
    "contrast",
    "core_subgraph",
    "enrichment",
    "explain",
    "explain_store",
    "gradient_importance",
    "importance",
    "merge_edges",
    "node_attention",
    "plot_enrichment",
    "plot_subgraph",
    "scores_table",
    "select_layers",
    "top_nodes",
]
