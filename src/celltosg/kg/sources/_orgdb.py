"""Bioconductor ``org.Hs.eg.sqlite``: the gene table every other source is mapped onto."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pandas as pd

from celltosg.kg.sources._common import ParseReport, require_file
from celltosg.kg.sources._sqlite import connect_readonly

log = logging.getLogger(__name__)

# (table, value column, output column); names are constants, never user input
_LINKS = {
    "aliases": ("alias", "alias_symbol", "alias"),
    "ensembl": ("ensembl", "ensembl_id", "ensembl_gene"),
    "ncbi2ensembl": ("ncbi2ensembl", "ensembl_id", "ensembl_gene"),
    "ensembl_prot": ("ensembl_prot", "prot_id", "ensembl_protein"),
    "uniprot": ("uniprot", "uniprot_id", "uniprot"),
    "kegg": ("kegg", "path_id", "path_id"),
}
_GO_TABLES = {"BP": "go_bp", "MF": "go_mf", "CC": "go_cc"}
_GO_ALL_TABLES = {"BP": "go_bp_all", "MF": "go_mf_all", "CC": "go_cc_all"}


@dataclass
class OrgDb:
    """The tables of an org.*.eg.db, keyed by Entrez id (str).

    ``genes``: entrez, symbol, full_name, gene_type (one row per gene); ``aliases``: entrez, alias;
    ``ensembl``: entrez, ensembl_gene (every id, alternate loci included); ``ncbi2ensembl``: entrez,
    ensembl_gene (the pairs NCBI's gene2ensembl lists, its match on the primary assembly); ``ensembl_prot``: entrez, ensembl_protein; ``uniprot``: entrez,
    uniprot; ``go``: entrez, go_id, ontology (BP/MF/CC), evidence (direct annotations); ``go_all``:
    entrez, go_id, ontology (annotations propagated to every ancestor term, one row per pair); ``kegg``:
    entrez, path_id; ``metadata``: the database's own name -> value table.
    """

    genes: pd.DataFrame
    aliases: pd.DataFrame
    ensembl: pd.DataFrame
    ncbi2ensembl: pd.DataFrame
    ensembl_prot: pd.DataFrame
    uniprot: pd.DataFrame
    go: pd.DataFrame
    go_all: pd.DataFrame
    kegg: pd.DataFrame
    metadata: dict[str, str]
    report: ParseReport

    def symbol_map(self) -> dict[str, str]:
        """Upper-case symbol or alias -> Entrez id.

        Official symbols win over aliases; a symbol shared by several genes goes to the protein-coding
        one with the smallest id; an alias of several genes (and not anyone's symbol) is left out.
        """
        genes = self.genes.assign(_coding=self.genes["gene_type"] != "protein-coding",
                                  _id=self.genes["entrez"].astype(int))
        genes = genes.sort_values(["_coding", "_id"])
        official = dict(zip(genes["symbol"].str.upper()[::-1], genes["entrez"][::-1], strict=True))
        aliases = self.aliases.assign(key=self.aliases["alias"].str.upper()).drop_duplicates(["key", "entrez"])
        unique = aliases.drop_duplicates("key", keep=False)
        mapping = {k: e for k, e in zip(unique["key"], unique["entrez"], strict=True) if k not in official}
        mapping.update(official)
        return mapping


def read_orgdb(path: str | os.PathLike) -> OrgDb:
    """Read an ``org.Hs.eg.sqlite`` (tables joined on ``_id``).

    Genes without a symbol in ``gene_info`` are malformed (counted, not kept); link rows with an empty
    value are dropped and counted in ``report.notes``.
    """
    path = require_file(path, "org.Hs.eg.db SQLite")
    tables = ["genes", "gene_info", "genetype", "metadata", *(t for t, _, _ in _LINKS.values()),
              *_GO_TABLES.values(), *_GO_ALL_TABLES.values()]
    report = ParseReport(str(path))
    con = connect_readonly(path, what="org.Hs.eg.db", tables=tables)
    try:
        genes = pd.read_sql_query(
            "SELECT g.gene_id AS entrez, i.symbol AS symbol, i.gene_name AS full_name, "
            "COALESCE(t.gene_type, ?) AS gene_type FROM genes g "
            "LEFT JOIN gene_info i ON i._id = g._id LEFT JOIN genetype t ON t._id = g._id ORDER BY g._id",
            con, params=("unknown",))
        report.n_rows = len(genes)
        bad = genes["symbol"].isna() | (genes["symbol"].fillna("").str.strip() == "")
        for entrez in genes.loc[bad, "entrez"]:
            report.malformed(f"gene {entrez}", "no symbol in gene_info")
        genes = genes.loc[~bad].reset_index(drop=True)
        genes["full_name"] = genes["full_name"].fillna("")
        genes = genes.astype({"entrez": str})
        report.n_kept = len(genes)
        links = {key: _link(con, table, column, out, report) for key, (table, column, out) in _LINKS.items()}
        go = pd.concat([_link(con, table, "go_id", "go_id", report, extra="evidence").assign(ontology=ont)
                        for ont, table in _GO_TABLES.items()], ignore_index=True)
        go_all = pd.concat([_link(con, table, "go_id", "go_id", report).assign(ontology=ont)
                            for ont, table in _GO_ALL_TABLES.items()], ignore_index=True)
        go_all = go_all.drop_duplicates(["entrez", "go_id"], ignore_index=True)
        metadata = dict(con.execute("SELECT name, value FROM metadata").fetchall())
    finally:
        con.close()
    go = go[["entrez", "go_id", "ontology", "evidence"]]
    return OrgDb(genes=genes, go=go, go_all=go_all, metadata=metadata, report=report.emit(), **links)


def _link(con, table: str, column: str, out: str, report: ParseReport, *, extra: str | None = None) -> pd.DataFrame:
    cols = f"x.{column} AS {out}" + (f", x.{extra} AS {extra}" if extra else "")
    frame = pd.read_sql_query(
        f"SELECT g.gene_id AS entrez, {cols} FROM {table} x JOIN genes g ON g._id = x._id "
        f"WHERE x.{column} IS NOT NULL AND TRIM(x.{column}) != ? ORDER BY g._id, x.{column}",
        con, params=("",))
    n_all = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    if n_all != len(frame):
        report.note(f"{table}_empty_or_orphan", n_all - len(frame))
    return frame.astype({"entrez": str})
