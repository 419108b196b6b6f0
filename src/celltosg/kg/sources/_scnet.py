"""scNET's human PPI table: ``,g1_symbol,g2_symbol,conn`` (comma separated, weights in (0, 1])."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, parse_weight, read_delimited, require_file


def parse_scnet_ppi(path: str | os.PathLike) -> Parsed:
    """Read scNET ``format_h_sapiens.csv``.

    Returns
    -------
    Parsed
        ``table`` with columns ``a``, ``b`` (gene symbols) and ``weight`` (float, the ``conn`` value), one
        row per valid input row; rows with an empty symbol or a non-numeric / negative weight are malformed.
    """
    path = require_file(path, "scNET PPI")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, float]] = []
    for line, row in read_delimited(path, delimiter=",", required=["g1_symbol", "g2_symbol", "conn"],
                                    report=report, what="scNET PPI CSV"):
        a, b = row["g1_symbol"].strip(), row["g2_symbol"].strip()
        weight = parse_weight(row["conn"])
        if not a or not b:
            report.malformed(f"line {line}", "empty gene symbol")
        elif weight is None:
            report.malformed(f"line {line}", f"bad weight {row['conn']!r}")
        else:
            rows.append((a, b, weight))
    report.n_kept = len(rows)
    return Parsed(pd.DataFrame(rows, columns=["a", "b", "weight"]), report.emit())
