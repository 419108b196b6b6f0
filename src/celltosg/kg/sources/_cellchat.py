"""CellChatDB ligand-receptor table as shipped by commot (``CellChatDB.ligrec.human.csv``)."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, complex_members, read_delimited, require_file


def parse_cellchat_ligrec(path: str | os.PathLike) -> Parsed:
    """Read ``CellChatDB.ligrec.human.csv`` (columns: row index, ligand, receptor, pathway, annotation).

    Complexes ``A_B`` are expanded to their members: one output row per (ligand member, receptor member).

    Returns
    -------
    Parsed
        ``table`` with ``ligand``, ``receptor`` (symbols), ``pathway`` and ``annotation``; a row with an
        empty ligand, receptor or complex member is malformed.
    """
    path = require_file(path, "CellChatDB ligrec")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, str, str]] = []
    for line, row in read_delimited(path, delimiter=",", required=["0", "1", "2", "3"], report=report,
                                    what="CellChatDB ligrec CSV"):
        ligands, receptors = complex_members(row["0"]), complex_members(row["1"])
        if not ligands or not receptors or not all(ligands) or not all(receptors):
            report.malformed(f"line {line}", f"empty ligand or receptor member in {row['0']!r} -> {row['1']!r}")
            continue
        rows.extend((lig, rec, row["2"], row["3"]) for lig in ligands for rec in receptors)
        report.n_kept += 1
    return Parsed(pd.DataFrame(rows, columns=["ligand", "receptor", "pathway", "annotation"]), report.emit())
