"""Knowledge graph: the pack format, source parsers and the KnowledgeGraph class."""

from celltosg.kg._graph import EMBEDDED_PACKS, GeneMapping, KnowledgeGraph, embedded_pack_path
from celltosg.kg._pack import EDGE_KINDS, pack_counts, read_pack_meta, verify_pack, write_pack

__all__ = [
    "EDGE_KINDS",
    "EMBEDDED_PACKS",
    "GeneMapping",
    "KnowledgeGraph",
    "embedded_pack_path",
    "pack_counts",
    "read_pack_meta",
    "verify_pack",
    "write_pack",
]
