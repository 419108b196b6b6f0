"""A pure-Python reader of BLAST version-4 protein databases (``.pin`` / ``.phr`` / ``.psq``).

Layout (NCBI ``formatdb``): the ``.pin`` index holds big-endian int32 version (4), database type
(1 = protein), length-prefixed title and timestamp, the sequence count N, the total residue count
(little-endian int64), the longest length, then N+1 header offsets and N+1 sequence offsets. Each
``.phr`` header is a BER-encoded ASN.1 ``Blast-def-line-set``; each ``.psq`` sequence is NCBIstdaa
bytes followed by a NUL separator.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError, MissingSourceError
from celltosg.kg.sources._common import Parsed, ParseReport

NCBISTDAA = "-ABCDEFGHIKLMNPQRSTVWXYZU*OJ"
_DECODE = bytes(NCBISTDAA.encode()) + b"?" * (256 - len(NCBISTDAA))
# Seq-id CHOICE alternatives that carry a Textseq-id (genbank, embl, pir, swissprot, other, ddbj, prf,
# tpg, tpe, tpd, gpipe, named-annot-track)
_TEXTSEQ = {4, 5, 6, 7, 9, 12, 13, 15, 16, 17, 18, 19}


def blast_db_stem(path: str | os.PathLike) -> Path:
    """The database name without ``.pin``/``.phr``/``.psq``; :class:`MissingSourceError` if a part is absent."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".pin", ".phr", ".psq") else path
    for ext in (".pin", ".phr", ".psq"):
        if not stem.with_name(stem.name + ext).is_file():
            raise MissingSourceError(f"BLAST protein database file {stem}{ext} does not exist; a BLAST v4 "
                                     "database needs .pin, .phr and .psq (fetch with `celltosg kg fetch`).")
    return stem


def _read_index(pin: bytes, where: Path) -> tuple[np.ndarray, np.ndarray]:
    def bad(reason: str) -> MalformedInputError:
        return MalformedInputError(f"BLAST index {where}: {reason}; expected a version-4 protein database "
                                   "made by formatdb (version-5 databases are not supported).")

    try:
        version, dbtype = struct.unpack_from(">ii", pin, 0)
        pos = 8
        if version != 4:
            raise bad(f"format version {version}")
        if dbtype != 1:
            raise bad("not a protein database")
        for _ in range(2):  # title, timestamp
            (n_bytes,) = struct.unpack_from(">i", pin, pos)
            pos += 4 + n_bytes
        (n,) = struct.unpack_from(">i", pin, pos)
        pos += 4 + 8 + 4  # count, total residues (LE int64), longest sequence
    except struct.error as error:
        raise bad("truncated header") from error
    if pos + 8 * (n + 1) != len(pin):
        raise bad(f"{len(pin)} bytes do not match {n} sequences")
    headers = np.frombuffer(pin, dtype=">u4", count=n + 1, offset=pos).astype(np.int64)
    sequences = np.frombuffer(pin, dtype=">u4", count=n + 1, offset=pos + 4 * (n + 1)).astype(np.int64)
    return headers, sequences


def _ber(buf: bytes, pos: int) -> tuple[int, object, int]:
    """Decode one BER element at ``pos``: (tag byte, bytes or list of children, next position)."""
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # multi-byte tag number
        while buf[pos] & 0x80:
            pos += 1
        pos += 1
    length = buf[pos]
    pos += 1
    if length == 0x80:  # indefinite length: children until 00 00
        children = []
        while buf[pos] or buf[pos + 1]:
            child_tag, value, pos = _ber(buf, pos)
            children.append((child_tag, value))
        return tag, children, pos + 2
    if length & 0x80:
        n_bytes = length & 0x7F
        length = int.from_bytes(buf[pos:pos + n_bytes], "big")
        pos += n_bytes
    end = pos + length
    if end > len(buf):
        raise IndexError("element runs past the header")
    if tag & 0x20:
        children = []
        while pos < end:
            child_tag, value, pos = _ber(buf, pos)
            children.append((child_tag, value))
        return tag, children, end
    return tag, buf[pos:end], end


def _field(children: list, number: int):
    """Value of the context-tagged field ``[number]`` of a SEQUENCE, unwrapped to its inner element."""
    for tag, value in children:
        if tag & 0xC0 == 0x80 and tag & 0x1F == number:
            return value[0][1] if isinstance(value, list) and value else value
    return None


def header_accession(header: bytes) -> str:
    """The accession of the first defline of one ``.phr`` header.

    A Textseq-id (e.g. ``swissprot``) gives its accession; otherwise the title's first word is used,
    taking the second ``|`` field of ``sp|P12345|NAME`` and the first field of ``P12345|...``.
    """
    _, deflines, _ = _ber(header, 0)
    first = deflines[0][1]
    seqids = _field(first, 1) or []
    for tag, value in seqids:
        if tag & 0x1F in _TEXTSEQ and isinstance(value, list) and value:
            accession = _field(value[0][1], 1)
            if isinstance(accession, bytes) and accession:
                return accession.decode("ascii")
    title = _field(first, 0)
    if not isinstance(title, bytes) or not title.strip():
        raise ValueError("defline has neither a text seq-id nor a title")
    word = title.decode("ascii", "replace").split()[0]
    parts = word.split("|")
    return parts[1] if parts[0] in ("sp", "tr") and len(parts) > 1 else parts[0]


def read_blast_protein_db(path: str | os.PathLike, *, accessions: Collection[str] | None = None) -> Parsed:
    """Read the sequences of a BLAST v4 protein database.

    Parameters
    ----------
    path
        The database name (``.../goasp.fasta``) or any of its three files.
    accessions
        Keep only these accessions (all when None); others are counted under ``notes["not_wanted"]``.

    Returns
    -------
    Parsed
        ``table`` with ``accession`` and ``sequence`` (one-letter codes), first occurrence of each
        accession; undecodable headers or sequences without their NUL separator are malformed.
    """
    stem = blast_db_stem(path)
    report = ParseReport(str(stem))
    pin = stem.with_name(stem.name + ".pin").read_bytes()
    headers, offsets = _read_index(pin, stem.with_name(stem.name + ".pin"))
    phr = stem.with_name(stem.name + ".phr").read_bytes()
    psq = stem.with_name(stem.name + ".psq").read_bytes()
    if headers[-1] > len(phr) or offsets[-1] > len(psq):
        raise MalformedInputError(f"BLAST database {stem}: the index points past the end of .phr/.psq; "
                                  "the files are truncated or from different databases.")
    wanted = None if accessions is None else set(accessions)
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    for i in range(len(headers) - 1):
        report.n_rows += 1
        try:
            accession = header_accession(phr[headers[i]:headers[i + 1]])
        except (IndexError, ValueError, UnicodeDecodeError) as error:
            report.malformed(f"sequence {i}", f"undecodable header ({error})")
            continue
        if wanted is not None and accession not in wanted:
            report.note("not_wanted")
            continue
        if accession in seen:
            report.note("duplicate_accession")
            continue
        start, end = offsets[i], offsets[i + 1] - 1
        if end < start or psq[end] != 0:
            report.malformed(f"sequence {i} ({accession})", "no NUL separator after the sequence")
            continue
        sequence = psq[start:end].translate(_DECODE).decode("ascii")
        if "?" in sequence:
            report.malformed(f"sequence {i} ({accession})", "residue code outside NCBIstdaa")
            continue
        seen.add(accession)
        rows.append((accession, sequence))
    report.n_kept = len(rows)
    return Parsed(pd.DataFrame(rows, columns=["accession", "sequence"]), report.emit())
