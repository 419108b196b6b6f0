"""NCBI ``gene_info`` (tab separated, header ``#tax_id GeneID Symbol ...``)."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, read_delimited, require_file

_REQUIRED = ["tax_id", "GeneID", "Symbol", "Synonyms", "dbXrefs", "description", "type_of_gene",
             "Full_name_from_nomenclature_authority"]


def _dash(text: str) -> str:
    return "" if text.strip() == "-" else text.strip()


def parse_gene_info(path: str | os.PathLike, *, taxon: int | None = 9606) -> Parsed:
    """Read NCBI ``gene_info`` (plain or ``.gz``).

    Returns
    -------
    Parsed
        ``table`` with ``entrez``, ``symbol``, ``aliases`` (``|``-joined), ``full_name`` (the nomenclature
        name, else the description), ``gene_type``, ``ensembl_gene`` (from ``dbXrefs``, may be empty) and
        ``taxon``. Other organisms are skipped and counted; a non-numeric GeneID or empty symbol is malformed.
    """
    path = require_file(path, "NCBI gene_info")
    report = ParseReport(str(path))
    rows: list[tuple] = []
    for line, row in read_delimited(path, delimiter="\t", required=_REQUIRED, report=report,
                                    what="NCBI gene_info"):
        if taxon is not None and row["tax_id"] != str(taxon):
            report.note("other_organism")
            continue
        if not row["GeneID"].isdigit() or not _dash(row["Symbol"]):
            report.malformed(f"line {line}", f"GeneID {row['GeneID']!r} / Symbol {row['Symbol']!r}")
            continue
        xrefs = [x.split(":", 1)[1] for x in _dash(row["dbXrefs"]).split("|") if x.startswith("Ensembl:")]
        full_name = _dash(row["Full_name_from_nomenclature_authority"]) or _dash(row["description"])
        rows.append((row["GeneID"], row["Symbol"].strip(), _dash(row["Synonyms"]), full_name,
                     _dash(row["type_of_gene"]), xrefs[0] if xrefs else "", row["tax_id"]))
    report.n_kept = len(rows)
    columns = ["entrez", "symbol", "aliases", "full_name", "gene_type", "ensembl_gene", "taxon"]
    return Parsed(pd.DataFrame(rows, columns=columns), report.emit())
