"""Bioconductor SQLite sources: org.Hs.eg.db and GO.db, on tiny databases written here."""

from __future__ import annotations

import sqlite3

import pytest

from celltosg.errors import MalformedInputError, MissingSourceError
from celltosg.kg.sources import read_go_terms, read_orgdb

# _id, entrez, symbol (None = no gene_info row), full name, gene type
GENES = [
    (1, "1", "A1BG", "alpha-1-B glycoprotein", "protein-coding"),
    (2, "2", "A2M", "alpha-2-macroglobulin", "protein-coding"),
    (3, "3", "A2MP1", "alpha-2-macroglobulin pseudogene 1", "pseudo"),
    (4, "10", "NAT2", "N-acetyltransferase 2", "protein-coding"),
    (5, "8351", "H3C4", "H3 clustered histone 4", "protein-coding"),
    (6, "8352", "H3C3", "H3 clustered histone 3", "protein-coding"),
    (7, "100", "LINC1", "long intergenic 1", "ncRNA"),
    (8, "4", None, None, "protein-coding"),
    (9, "200", "DUP", "duplicate symbol, ncRNA", "ncRNA"),
    (10, "201", "DUP", "duplicate symbol, coding", "protein-coding"),
]
LINKS = {
    "alias": [(1, "A1B"), (1, "ABG"), (2, "A2MD"), (4, "ABG"), (2, "NAT2"), (1, "A1BG")],
    # DUP (201) shares A2M's id, as a copy on an alternate locus does; NCBI's gene2ensembl gives it to A2M
    "ensembl": [(1, "ENSG00000121410"), (2, "ENSG00000175899"), (2, "ENSG00000000001"), (10, "ENSG00000175899")],
    "ncbi2ensembl": [(1, "ENSG00000121410"), (2, "ENSG00000175899")],
    "ensembl_prot": [(1, "ENSP00000263100")],
    "uniprot": [(1, "V9HWD8"), (1, "P04217"), (2, "P01023"), (5, "P68431"), (6, "P68431"), (10, "Q00001")],
    "kegg": [(2, "04610")],
}
GO = {
    "go_bp": [(1, "GO:0000001", "IDA"), (1, "GO:0008150", "ND"), (1, "GO:0000002", "IEA")],
    "go_mf": [(1, "GO:0000006", "IEA"), (2, "GO:0000006", "IEA")],
    "go_cc": [(2, "GO:0000007", "IDA")],
    "go_bp_all": [(1, "GO:0000001", "IDA"), (1, "GO:0048308", "IDA"), (1, "GO:0048308", "IEA")],
    "go_mf_all": [(1, "GO:0000006", "IEA"), (2, "GO:0000006", "IEA")],
    "go_cc_all": [(2, "GO:0000007", "IDA")],
}
TERMS = [("GO:0000001", "mitochondrion inheritance", "BP"), ("GO:0000002", "mitochondrial genome maintenance", "BP"),
         ("GO:0048308", "organelle inheritance", "BP"), ("GO:0008150", "biological_process", "BP"),
         ("GO:0000006", "zinc transporter activity", "MF"), ("GO:0000007", "low-affinity zinc importer", "CC"),
         ("GO:0003673", "Gene_Ontology", "universal"), ("GO:0000009", "", "MF")]


def write_orgdb(path):
    """A tiny org.Hs.eg.sqlite with the real table layout."""
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE genes (_id INTEGER PRIMARY KEY, gene_id TEXT);"
        "CREATE TABLE gene_info (_id INTEGER, gene_name TEXT, symbol TEXT);"
        "CREATE TABLE genetype (_id INTEGER, gene_type TEXT);"
        "CREATE TABLE metadata (name TEXT, value TEXT);"
        "CREATE TABLE alias (_id INTEGER, alias_symbol TEXT);"
        "CREATE TABLE ensembl (_id INTEGER, ensembl_id TEXT);"
        "CREATE TABLE ncbi2ensembl (_id INTEGER, ensembl_id TEXT);"
        "CREATE TABLE ensembl_prot (_id INTEGER, prot_id TEXT);"
        "CREATE TABLE uniprot (_id INTEGER, uniprot_id TEXT);"
        "CREATE TABLE kegg (_id INTEGER, path_id TEXT);"
        + "".join(f"CREATE TABLE {t} (_id INTEGER, go_id TEXT, evidence TEXT);" for t in GO))
    for _id, entrez, symbol, name, gene_type in GENES:
        con.execute("INSERT INTO genes VALUES (?, ?)", (_id, entrez))
        con.execute("INSERT INTO genetype VALUES (?, ?)", (_id, gene_type))
        if symbol is not None:
            con.execute("INSERT INTO gene_info VALUES (?, ?, ?)", (_id, name, symbol))
    for table, rows in LINKS.items():
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
    for table, rows in GO.items():
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)
    con.execute("INSERT INTO metadata VALUES ('ORGANISM', 'Homo sapiens')")
    con.commit()
    con.close()
    return path


def write_godb(path):
    """A tiny GO.sqlite ``go_term`` table (with GO.db's 'universal' root and one empty name)."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE go_term (_id INTEGER PRIMARY KEY, go_id TEXT, term TEXT, ontology TEXT, "
                "definition TEXT)")
    con.executemany("INSERT INTO go_term (go_id, term, ontology) VALUES (?, ?, ?)", TERMS)
    con.commit()
    con.close()
    return path


def test_orgdb_tables_joined_on_id(tmp_path):
    org = read_orgdb(write_orgdb(tmp_path / "org.sqlite"))
    assert org.report.n_rows == 10 and org.report.n_kept == 9 and org.report.n_malformed == 1
    assert "gene 4" in org.report.malformed_examples[0]
    genes = org.genes.set_index("entrez")
    assert genes.loc["2", "symbol"] == "A2M" and genes.loc["3", "gene_type"] == "pseudo"
    assert sorted(org.uniprot.loc[org.uniprot["entrez"] == "1", "uniprot"]) == ["P04217", "V9HWD8"]
    assert set(org.ensembl_prot["ensembl_protein"]) == {"ENSP00000263100"}
    assert org.ncbi2ensembl.values.tolist() == [["1", "ENSG00000121410"], ["2", "ENSG00000175899"]]
    assert org.kegg.values.tolist() == [["2", "04610"]]
    go = org.go.set_index(["entrez", "go_id"])
    assert go.loc[("1", "GO:0000006"), "ontology"] == "MF" and len(org.go) == 6
    assert len(org.go_all) == 5  # the IDA/IEA duplicate of (1, GO:0048308) is collapsed
    assert org.metadata == {"ORGANISM": "Homo sapiens"}


def test_symbol_map_precedence(tmp_path):
    mapping = read_orgdb(write_orgdb(tmp_path / "org.sqlite")).symbol_map()
    assert mapping["A1BG"] == "1" and mapping["A1B"] == "1"
    assert mapping["NAT2"] == "10"  # an official symbol beats another gene's alias
    assert "ABG" not in mapping  # alias of two genes: ambiguous, left out
    assert mapping["DUP"] == "201"  # shared symbol: the protein-coding gene


def test_go_terms(tmp_path):
    table, report = read_go_terms(write_godb(tmp_path / "GO.sqlite"))
    assert set(table["ontology"]) == {"BP", "MF", "CC"} and len(table) == 6
    assert report.notes == {"other_ontology": 1} and report.n_malformed == 1


def test_sqlite_errors(tmp_path):
    with pytest.raises(MissingSourceError):
        read_orgdb(tmp_path / "absent.sqlite")
    not_sqlite = tmp_path / "junk.sqlite"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MalformedInputError, match="not a readable SQLite"):
        read_orgdb(not_sqlite)
    with pytest.raises(MalformedInputError, match=r"lacks tables \['go_term'\]"):
        read_go_terms(write_orgdb(tmp_path / "org.sqlite"))
