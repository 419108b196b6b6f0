"""Explanations: node/edge importance, the top-k core subgraph, enrichment and figures."""

from __future__ import annotations

from celltosg.explain._attribution import (
    BASELINES,
    GRADIENT_METHODS,
    baseline_profile,
    contrastive_target,
    rna_attribution,
)
from celltosg.explain._enrichment import COLLECTIONS, benjamini_hochberg, enrichment
from celltosg.explain._explain import OUTPUT_FILES, ExplainResult, explain, scores_table
from celltosg.explain._from_store import explain_store
from celltosg.explain._importance import (
    DEFAULT_METHOD,
    METHODS,
    NODE_RULES,
    Importance,
    attention_importance,
    contrast,
    importance,
    merge_edges,
    node_attention,
    select_layers,
)
from celltosg.explain._plots import plot_enrichment, plot_subgraph
from celltosg.explain._subgraph import CoreSubgraph, core_subgraph, grow_core, top_nodes

__all__ = [
    "BASELINES",
    "DEFAULT_METHOD",
    "GRADIENT_METHODS",
    "METHODS",
    "COLLECTIONS",
    "NODE_RULES",
    "OUTPUT_FILES",
    "CoreSubgraph",
    "ExplainResult",
    "Importance",
    "attention_importance",
    "baseline_profile",
    "benjamini_hochberg",
    "contrast",
    "contrastive_target",
    "core_subgraph",
    "enrichment",
    "explain",
    "explain_store",
    "grow_core",
    "importance",
    "merge_edges",
    "node_attention",
    "plot_enrichment",
    "plot_subgraph",
    "rna_attribution",
    "scores_table",
    "select_layers",
    "top_nodes",
]
