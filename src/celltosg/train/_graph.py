"""Graph inputs of a cohort's gene graph: structure plus frozen text and sequence features per node."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)


def build_graph_inputs(kg: KnowledgeGraph, *, seq_dim: int):
    """``GraphInputs`` of ``kg`` with frozen node-text embeddings (cached) and k-mer sequence features.

    Parameters
    ----------
    kg
        Gene graph (usually ``cohort.kg``), N = ``kg.n_nodes`` nodes.
    seq_dim
        Width S of the sequence features.
    """
    from celltosg.encode import sequence_features, text_embeddings
    from celltosg.model import graph_inputs

    log.info("embedding the text of %d graph nodes (cached per node)", kg.n_nodes)
    text = text_embeddings(kg)
    seq_feat, seq_mask = sequence_features(kg, dim=seq_dim)
    return graph_inputs(kg, text, seq_feat, seq_mask)
