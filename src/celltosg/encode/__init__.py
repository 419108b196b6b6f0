"""Frozen node encoders: node text (all-MiniLM-L6-v2, cached per node) and protein sequence features."""

from __future__ import annotations

from celltosg.encode._cache import EmbeddingCache, Encoder, cached_encode, default_cache_dir, text_hash
from celltosg.encode._packed import META_KEY, attach_text_embeddings, write_embeddings_file
from celltosg.encode._sequence import (
    AMINO_ACIDS,
    SWISSPROT_COMPOSITION,
    KmerProjection,
    kmer_composition,
    sequence_features,
)
from celltosg.encode._text import TEXT_DIM, MiniLMEncoder, encode_texts, text_embeddings

#: Alias of :class:`Encoder` for protein language models: ``name``, ``dim``, ``encode(sequences)``.
SequenceEncoder = Encoder

__all__ = [
    "META_KEY",
    "AMINO_ACIDS",
    "SWISSPROT_COMPOSITION",
    "TEXT_DIM",
    "EmbeddingCache",
    "Encoder",
    "KmerProjection",
    "MiniLMEncoder",
    "SequenceEncoder",
    "attach_text_embeddings",
    "cached_encode",
    "default_cache_dir",
    "encode_texts",
    "kmer_composition",
    "sequence_features",
    "text_embeddings",
    "text_hash",
    "write_embeddings_file",
]
