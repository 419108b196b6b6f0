"""liana's ``omni_resource.csv``: ligand -> receptor pairs from 17 resources (OmniPath build)."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, complex_members, read_delimited, require_file

_COLUMNS = ["source", "target", "source_genesymbol", "target_genesymbol", "resource"]


def parse_liana_omni(path: str | os.PathLike, *, resource: str | None = "consensus") -> Parsed:
    """Read liana's OmniPath resource, keeping one ``resource`` subset (all when None).

    Complexes (``COMPLEX:P1_P2`` with symbols ``A_B``) are expanded to their members: one output row per
    (ligand member, receptor member).

    Returns
    -------
    Parsed
        ``table`` with ``ligand``, ``receptor`` (symbols), ``ligand_uniprot``, ``receptor_uniprot`` and
        ``resource``. A row whose UniProt and symbol complexes have different sizes, or with an empty
        member, is malformed.
    """
    path = require_file(path, "liana omni_resource")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, str, str, str]] = []
    for line, row in read_delimited(path, delimiter=",", required=_COLUMNS, report=report,
                                    what="liana omni_resource.csv"):
        if resource is not None and row["resource"] != resource:
            report.note("other_resource")
            continue
        sides = []
        for uniprot_col, symbol_col in (("source", "source_genesymbol"), ("target", "target_genesymbol")):
            uniprots, symbols = complex_members(row[uniprot_col]), complex_members(row[symbol_col])
            if not symbols or len(uniprots) != len(symbols) or not all(symbols) or not all(uniprots):
                report.malformed(f"line {line}", f"complex {row[uniprot_col]!r} / {row[symbol_col]!r} "
                                                 "has mismatched or empty members")
                break
            sides.append(list(zip(symbols, uniprots, strict=True)))
        else:
            if any(len(side) > 1 for side in sides):
                report.note("complex_rows")
            for lig, lig_up in sides[0]:
                for rec, rec_up in sides[1]:
                    rows.append((lig, rec, lig_up, rec_up, row["resource"]))
            report.n_kept += 1
    table = pd.DataFrame(rows, columns=["ligand", "receptor", "ligand_uniprot", "receptor_uniprot", "resource"])
    return Parsed(table, report.emit())
