"""BioGRID ``tab3`` interaction files (tab separated, one header line starting with ``#``)."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, read_delimited, require_file

_A, _B = "Entrez Gene Interactor A", "Entrez Gene Interactor B"
_SA, _SB = "Official Symbol Interactor A", "Official Symbol Interactor B"
_TA, _TB = "Organism ID Interactor A", "Organism ID Interactor B"
_TYPE = "Experimental System Type"


def parse_biogrid_tab3(path: str | os.PathLike, *, taxon: int | None = 9606,
                       physical_only: bool = True) -> Parsed:
    """Read a BioGRID tab3 file.

    Returns
    -------
    Parsed
        ``table`` with ``a``, ``b`` (Entrez ids as str), ``a_symbol``, ``b_symbol`` and ``weight`` (1.0 per
        reported interaction). Rows of another organism (when ``taxon`` is set) or genetic interactions
        (when ``physical_only``) are skipped and counted in ``notes``; a non-numeric Entrez id is malformed.
    """
    path = require_file(path, "BioGRID tab3")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, str, str, float]] = []
    wanted_taxon = None if taxon is None else str(taxon)
    for line, row in read_delimited(path, delimiter="\t", required=[_A, _B, _SA, _SB, _TA, _TB, _TYPE],
                                    report=report, what="BioGRID tab3"):
        a, b = row[_A].strip(), row[_B].strip()
        if not (a.isdigit() and b.isdigit()):
            report.malformed(f"line {line}", f"Entrez ids {a!r}, {b!r} are not numbers")
        elif wanted_taxon is not None and (row[_TA] != wanted_taxon or row[_TB] != wanted_taxon):
            report.note("other_organism")
        elif physical_only and row[_TYPE].strip().lower() != "physical":
            report.note("not_physical")
        else:
            rows.append((a, b, row[_SA].strip(), row[_SB].strip(), 1.0))
    report.n_kept = len(rows)
    table = pd.DataFrame(rows, columns=["a", "b", "a_symbol", "b_symbol", "weight"])
    return Parsed(table, report.emit())
