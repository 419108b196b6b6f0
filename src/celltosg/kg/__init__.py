"""Knowledge graph: the pack format, source parsers and the KnowledgeGraph class."""

from celltosg.kg._assemble import build_pack
from celltosg.kg._fetch import fetch_all
from celltosg.kg._graph import EMBEDDED_PACKS, GeneMapping, KnowledgeGraph, embedded_pack_path
from celltosg.kg._pack import EDGE_KINDS, pack_counts, read_pack_meta, verify_pack, write_pack

__all__ = [
    "EDGE_KINDS",
    "EMBEDDED_PACKS",
    "GeneMapping",
    "KnowledgeGraph",
    "build_pack",
    "embedded_pack_path",
    "fetch_all",
    "pack_counts",
    "read_pack_meta",
    "verify_pack",
    "write_pack",
]
