"""Bioconductor ``GO.sqlite``: GO term names and ontologies."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, require_file
from celltosg.kg.sources._sqlite import connect_readonly

ONTOLOGIES = ("BP", "MF", "CC")


def read_go_terms(path: str | os.PathLike) -> Parsed:
    """Read the ``go_term`` table of GO.db.

    Returns
    -------
    Parsed
        ``table`` with ``go_id``, ``term`` and ``ontology`` (BP / MF / CC); a row with another ontology
        (GO.db carries the ``universal`` root) is skipped and counted, an empty term name is malformed.
    """
    path = require_file(path, "GO.db SQLite")
    report = ParseReport(str(path))
    con = connect_readonly(path, what="GO.db", tables=["go_term"])
    try:
        terms = pd.read_sql_query("SELECT go_id, term, ontology FROM go_term ORDER BY go_id", con)
    finally:
        con.close()
    report.n_rows = len(terms)
    empty = terms["term"].fillna("").str.strip() == ""
    for go_id in terms.loc[empty, "go_id"]:
        report.malformed(go_id, "empty term name")
    other = ~terms["ontology"].isin(ONTOLOGIES) & ~empty
    if other.any():
        report.note("other_ontology", int(other.sum()))
    terms = terms.loc[~empty & ~other].reset_index(drop=True)
    report.n_kept = len(terms)
    return Parsed(terms, report.emit())
