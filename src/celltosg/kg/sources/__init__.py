"""Parsers of knowledge sources: each returns tables plus a :class:`ParseReport` of what it read."""

from __future__ import annotations

from celltosg.kg.sources._biogrid import parse_biogrid_tab3
from celltosg.kg.sources._blastdb import read_blast_protein_db
from celltosg.kg.sources._cellchat import parse_cellchat_ligrec
from celltosg.kg.sources._common import Parsed, ParseReport
from celltosg.kg.sources._fasta import parse_uniprot_fasta
from celltosg.kg.sources._gene_info import parse_gene_info
from celltosg.kg.sources._godb import read_go_terms
from celltosg.kg.sources._liana import parse_liana_omni
from celltosg.kg.sources._obo import parse_go_obo
from celltosg.kg.sources._orgdb import OrgDb, read_orgdb
from celltosg.kg.sources._scnet import parse_scnet_ppi
from celltosg.kg.sources._string import parse_string_links

__all__ = [
    "OrgDb",
    "ParseReport",
    "Parsed",
    "parse_biogrid_tab3",
    "parse_cellchat_ligrec",
    "parse_gene_info",
    "parse_go_obo",
    "parse_liana_omni",
    "parse_scnet_ppi",
    "parse_string_links",
    "parse_uniprot_fasta",
    "read_blast_protein_db",
    "read_go_terms",
    "read_orgdb",
]
