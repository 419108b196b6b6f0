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


def model_genes(cohort, *, max_genes: int | None = None, pretrained=None):
    """``cohort`` restricted to the genes the model reads: a pretrained checkpoint's genes when one is given,
    else at most ``max_genes`` (None: the recipe's; 0: all), the most variable of the train split."""
    from celltosg.errors import CheckpointError, QueryError
    from celltosg.loader import most_variable_genes, restrict_genes

    if pretrained is not None:
        from celltosg.train._checkpoint import load_checkpoint

        genes = load_checkpoint(pretrained)["rna_node_ids"]
        log.info("reading the %d genes of the pretrained checkpoint", len(genes))
        try:
            return restrict_genes(cohort, genes)
        except QueryError as error:
            raise CheckpointError(f"pretrained checkpoint {pretrained} does not fit this cohort: {error}") from None
    if max_genes is None:
        from celltosg.recipe import RECIPE

        max_genes = RECIPE.max_genes
    return most_variable_genes(cohort, max_genes)
