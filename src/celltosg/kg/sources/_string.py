"""STRING ``protein.links`` files (``protein.links.v12.0.txt[.gz]`` and ``protein.links.detailed``)."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, parse_weight, read_delimited, require_file


def _strip_taxon(identifier: str) -> str:
    """``9606.ENSP00000000233`` -> ``ENSP00000000233``."""
    taxon, dot, rest = identifier.partition(".")
    return rest if dot and taxon.isdigit() else identifier


def parse_string_links(path: str | os.PathLike, *, min_score: float = 0.0) -> Parsed:
    """Read a space-separated STRING links file, plain or ``.detailed`` (only ``combined_score`` is used).

    Returns
    -------
    Parsed
        ``table`` with ``a``, ``b`` (Ensembl protein ids, taxon prefix removed) and ``weight``
        (``combined_score / 1000`` in [0, 1]); pairs below ``min_score`` (same scale) are skipped and
        counted under ``notes["below_min_score"]``. A score outside 0..1000 is malformed.
    """
    path = require_file(path, "STRING protein.links")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, float]] = []
    for line, row in read_delimited(path, delimiter=" ", required=["protein1", "protein2", "combined_score"],
                                    report=report, what="STRING protein.links"):
        weight = parse_weight(row["combined_score"], scale=1000.0)
        a, b = _strip_taxon(row["protein1"]), _strip_taxon(row["protein2"])
        if not a or not b:
            report.malformed(f"line {line}", "empty protein id")
        elif weight is None or weight > 1.0:
            report.malformed(f"line {line}", f"combined_score {row['combined_score']!r} not in 0..1000")
        elif weight < min_score:
            report.note("below_min_score")
        else:
            rows.append((a, b, weight))
    report.n_kept = len(rows)
    return Parsed(pd.DataFrame(rows, columns=["a", "b", "weight"]), report.emit())
