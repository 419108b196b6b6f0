"""BLAST v4 protein databases: a tiny database is written here byte by byte, then read back."""

from __future__ import annotations

import struct

import pytest

from celltosg.errors import MalformedInputError, MissingSourceError
from celltosg.kg.sources import read_blast_protein_db

ALPHABET = "-ABCDEFGHIKLMNPQRSTVWXYZU*OJ"  # NCBIstdaa codes 0..27


def tlv(tag: int, content: bytes, *, indefinite: bool = False) -> bytes:
    """BER: tag, length (short, long or indefinite form), content."""
    if indefinite:
        return bytes([tag, 0x80]) + content + b"\x00\x00"
    n = len(content)
    length = bytes([n]) if n < 128 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def defline_set(title: str | None, seqid: bytes, *, indefinite: bool) -> bytes:
    fields = b""
    if title is not None:
        fields += tlv(0xA0, tlv(0x1A, title.encode()), indefinite=indefinite)
    fields += tlv(0xA1, tlv(0x30, seqid, indefinite=indefinite), indefinite=indefinite)
    fields += tlv(0xA2, tlv(0x02, b"\x00"), indefinite=indefinite)  # taxid
    return tlv(0x30, tlv(0x30, fields, indefinite=indefinite), indefinite=indefinite)


def general_id(n: int) -> bytes:
    """Seq-id general [10] Dbtag {db "BL_ORD_ID", tag id n}, as formatdb writes without -o."""
    dbtag = tlv(0xA0, tlv(0x1A, b"BL_ORD_ID")) + tlv(0xA1, tlv(0xA0, tlv(0x02, bytes([n]))))
    return tlv(0xAA, tlv(0x30, dbtag))


def swissprot_id(name: str, accession: str) -> bytes:
    """Seq-id swissprot [7] Textseq-id {name, accession}."""
    return tlv(0xA7, tlv(0x30, tlv(0xA0, tlv(0x1A, name.encode())) + tlv(0xA1, tlv(0x1A, accession.encode()))))


def write_blastdb(stem, records, *, version: int = 4, dbtype: int = 1):
    """Write ``stem.pin/.phr/.psq`` for ``records``: (header bytes, residue codes bytes) pairs."""
    phr, psq = b"", b"\x00"
    header_offsets, sequence_offsets = [0], [1]
    for header, codes in records:
        phr += header
        psq += codes + b"\x00"
        header_offsets.append(len(phr))
        sequence_offsets.append(len(psq))
    title, stamp = b"tiny test db", b"Jan 20, 2022  10:32 AM\x00\x00\x00\x00"
    total = sum(len(c) for _, c in records)
    pin = struct.pack(">ii", version, dbtype) + struct.pack(">i", len(title)) + title
    pin += struct.pack(">i", len(stamp)) + stamp + struct.pack(">i", len(records)) + struct.pack("<q", total)
    pin += struct.pack(">i", max(len(c) for _, c in records))
    pin += struct.pack(f">{len(records) + 1}I", *header_offsets)
    pin += struct.pack(f">{len(records) + 1}I", *sequence_offsets)
    for ext, data in ((".pin", pin), (".phr", phr), (".psq", psq)):
        stem.with_name(stem.name + ext).write_bytes(data)
    return stem


def encode(sequence: str) -> bytes:
    return bytes(ALPHABET.index(c) for c in sequence)


SEQ = {"B0RED7": "MGSASRASLDSARRVLAELGG", "P04637": "MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTE",
       "Q99999": "ACDEFGHIKLMNPQRSTVWYUOXBZJ*"}


@pytest.fixture
def tiny_db(tmp_path):
    long_title = "sp|P04637|P53_HUMAN Cellular tumor antigen p53 " + "x" * 200  # long-form BER length
    records = [
        (defline_set("B0RED7|GO:0006200,GO:0006754", general_id(0), indefinite=True), encode(SEQ["B0RED7"])),
        (defline_set(long_title, general_id(1), indefinite=False), encode(SEQ["P04637"])),
        (defline_set("some other title", swissprot_id("ZZZ_HUMAN", "Q99999"), indefinite=True), encode(SEQ["Q99999"])),
        (defline_set("B0RED7|duplicate", general_id(3), indefinite=True), encode("MK")),
        (defline_set("P11111|bad residue", general_id(4), indefinite=True), bytes([1, 40, 2])),
        (defline_set("P22222|x", general_id(5), indefinite=True)[:-6], encode("MK")),  # truncated header
    ]
    return write_blastdb(tmp_path / "goasp.fasta", records)


def test_reads_accessions_and_sequences(tiny_db):
    table, report = read_blast_protein_db(tiny_db)
    assert dict(zip(table["accession"], table["sequence"], strict=True)) == SEQ
    assert report.n_rows == 6 and report.n_kept == 3 and report.n_malformed == 2
    assert report.notes == {"duplicate_accession": 1}
    assert any("P11111" in e and "NCBIstdaa" in e for e in report.malformed_examples)


def test_accession_filter_and_file_path(tiny_db):
    table, report = read_blast_protein_db(tiny_db.with_name("goasp.fasta.psq"), accessions={"P04637", "NOPE"})
    assert table["accession"].tolist() == ["P04637"]
    assert report.notes["not_wanted"] == 4


def test_format_errors(tmp_path, tiny_db):
    v5 = write_blastdb(tmp_path / "v5", [(defline_set("A|", general_id(0), indefinite=True), encode("MK"))],
                       version=5)
    with pytest.raises(MalformedInputError, match="format version 5"):
        read_blast_protein_db(v5)
    nucleotide = write_blastdb(tmp_path / "nt", [(defline_set("A|", general_id(0), indefinite=True), b"\x01")],
                               dbtype=0)
    with pytest.raises(MalformedInputError, match="not a protein database"):
        read_blast_protein_db(nucleotide)
    tiny_db.with_name("goasp.fasta.psq").unlink()
    with pytest.raises(MissingSourceError, match=r"\.psq does not exist"):
        read_blast_protein_db(tiny_db)
