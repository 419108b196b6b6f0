"""UniProt FASTA (``>sp|P04637|P53_HUMAN Cellular tumor antigen p53 OS=... OX=9606 GN=TP53 PE=1 SV=4``)."""

from __future__ import annotations

import os
import re

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, open_text, require_file

_HEADER = re.compile(r"^>(sp|tr)\|([^|\s]+)\|(\S+)\s*(.*)$")
_FIELD = re.compile(r"\b(OX|GN)=(\S+)")
_RESIDUES = re.compile(r"^[A-Za-z*]+$")


def parse_uniprot_fasta(path: str | os.PathLike) -> Parsed:
    """Read a UniProt FASTA file (plain or ``.gz``).

    Returns
    -------
    Parsed
        ``table`` with ``accession``, ``entry_name``, ``reviewed`` (bool, ``sp``), ``symbol`` (``GN=``, may
        be empty), ``taxon`` (``OX=``, may be empty), ``description`` and ``sequence``. A record whose
        header is not UniProt-style, with no residues or non-letter residues is malformed.
    """
    path = require_file(path, "UniProt FASTA")
    report = ParseReport(str(path))
    rows: list[tuple] = []
    header: str | None = None
    header_line = 0
    chunks: list[str] = []

    def flush() -> None:
        if header is None:
            return
        report.n_rows += 1
        where, sequence = f"line {header_line}", "".join(chunks)
        match = _HEADER.match(header)
        if match is None:
            report.malformed(where, f"header {header[:60]!r} is not '>sp|ACC|NAME ...' or '>tr|...'")
        elif not sequence or not _RESIDUES.match(sequence):
            report.malformed(where, "empty sequence or non-letter residues")
        else:
            db, accession, entry, rest = match.groups()
            fields = dict(_FIELD.findall(rest))
            description = re.split(r"\s+[A-Z]{2}=", rest, maxsplit=1)[0]
            rows.append((accession, entry, db == "sp", fields.get("GN", ""), fields.get("OX", ""),
                         description, sequence.upper()))

    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if line.startswith(">"):
                flush()
                header, header_line, chunks = line, number, []
            elif line:
                if header is None:
                    report.malformed(f"line {number}", "sequence before the first '>' header")
                    continue
                chunks.append(line)
        flush()
    report.n_kept = len(rows)
    columns = ["accession", "entry_name", "reviewed", "symbol", "taxon", "description", "sequence"]
    return Parsed(pd.DataFrame(rows, columns=columns), report.emit())
