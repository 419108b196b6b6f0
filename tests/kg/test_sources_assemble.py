"""Pack assembly from parsed sources, checked against hand-derived nodes, edges, texts and gene sets."""

from __future__ import annotations

import pandas as pd
import pytest

from celltosg.kg import KnowledgeGraph, write_pack
from celltosg.kg._assemble import Interactions, assemble, node_text
from celltosg.kg.sources import read_go_terms, read_orgdb
from tests.kg.test_sources_sqlite import write_godb, write_orgdb


@pytest.fixture
def tables(tmp_path):
    org = read_orgdb(write_orgdb(tmp_path / "org.sqlite"))
    terms = read_go_terms(write_godb(tmp_path / "GO.sqlite")).table
    ppi = pd.DataFrame([("A1BG", "A2M", 0.5), ("A2M", "A1BG", 0.9), ("a1b", "H3C3", 0.3), ("A1BG", "A1BG", 1.0),
                        ("A2MP1", "A2M", 0.2), ("NOPE", "A2M", 0.1)], columns=["a", "b", "weight"])
    lr = pd.DataFrame([("A1BG", "A2M", "liana_consensus"), ("A1BG", "A2M", "CellChatDB"),
                       ("A2M", "A1BG", "CellChatDB")], columns=["a", "b", "provenance"])
    interactions = [Interactions("ppi", ppi.assign(provenance="scNET"), []),
                    Interactions("ligand_receptor", lr.assign(weight=1.0), [])]
    sequences = pd.DataFrame({"accession": ["V9HWD8", "P68431", "Q77777"], "sequence": ["MMM", "ARTK", "MK"]})
    return assemble(org, terms, interactions, sequences)


def test_nodes(tables):
    nodes = tables.nodes
    assert nodes["node_id"].tolist() == [
        "RNA:1", "RNA:2", "RNA:3", "RNA:10", "RNA:201", "RNA:8351", "RNA:8352",
        "PROTEIN:V9HWD8", "PROTEIN:P01023", "PROTEIN:Q00001", "PROTEIN:P68431:8351", "PROTEIN:P68431:8352"]
    assert nodes["type"].tolist() == ["rna"] * 7 + ["protein"] * 5
    a1bg = nodes.iloc[0]
    assert a1bg["aliases"] == "A1B|ABG" and a1bg["ensembl_gene"] == "ENSG00000121410" and a1bg["uniprot"] == ""
    assert nodes.iloc[1]["ensembl_gene"] == "ENSG00000000001"
    assert a1bg["text"] == ("A1BG: alpha-1-B glycoprotein. GO: mitochondrial genome maintenance; "
                            "mitochondrion inheritance; zinc transporter activity")
    assert nodes.iloc[1]["text"] == "A2M: alpha-2-macroglobulin. GO: zinc transporter activity; low-affinity zinc importer"
    assert nodes.iloc[3]["text"] == "NAT2: N-acetyltransferase 2." and not nodes.iloc[3]["has_go_text"]
    assert nodes.iloc[7][["symbol", "entrez", "uniprot", "text"]].tolist() == [
        "A1BG", "1", "V9HWD8", a1bg["text"]]
    assert nodes["has_go_text"].tolist() == [True, True, False, False, False, False, False,
                                             True, True, False, False, False]


def _edges(tables, kind):
    e = tables.edges[tables.edges["kind"] == kind]
    return sorted(zip(e["source"].tolist(), e["target"].tolist(), e["weight"].astype(float).round(3).tolist(),
                      e["provenance"], strict=True))


def test_edges(tables):
    assert _edges(tables, "internal") == [(0, 7, 1.0, "org.Hs.eg.db"), (1, 8, 1.0, "org.Hs.eg.db"),
                                          (4, 9, 1.0, "org.Hs.eg.db"), (5, 10, 1.0, "org.Hs.eg.db"),
                                          (6, 11, 1.0, "org.Hs.eg.db")]
    assert _edges(tables, "ppi") == [(7, 8, 0.9, "scNET"), (7, 11, 0.3, "scNET")]
    assert _edges(tables, "ligand_receptor") == [(7, 8, 1.0, "CellChatDB|liana_consensus"),
                                                 (8, 7, 1.0, "CellChatDB")]
    ppi_report = next(r for r in tables.reports if r.source.startswith("ppi"))
    assert ppi_report.unknown == ["NOPE"]
    assert ppi_report.notes == {"unknown_symbol": 1, "gene_without_protein": 1, "self_loop": 1, "duplicate": 1}
    assert ppi_report.n_rows == 6 and ppi_report.n_kept == 2


def test_sequences_and_genesets(tables):
    assert tables.sequences.values.tolist() == [[7, "V9HWD8", "MMM"], [10, "P68431", "ARTK"],
                                                [11, "P68431", "ARTK"]]
    assert tables.genesets.values.tolist() == [
        ["GO_BP", "GO:0000001", "mitochondrion inheritance", "A1BG"],
        ["GO_BP", "GO:0048308", "organelle inheritance", "A1BG"],
        ["GO_CC", "GO:0000007", "low-affinity zinc importer", "A2M"],
        ["GO_MF", "GO:0000006", "zinc transporter activity", "A1BG"],
        ["GO_MF", "GO:0000006", "zinc transporter activity", "A2M"],
        ["KEGG", "hsa04610", "hsa04610", "A2M"]]


def test_written_pack_loads_with_expected_counts(tables, tmp_path):
    path = write_pack(tmp_path / "pack", tables.nodes, tables.edges, tables.sequences, tables.genesets,
                      [{"name": "tiny", "version": "1", "license": "MIT", "files": []}], name="tiny",
                      ensembl_ids=tables.ensembl_ids)
    assert KnowledgeGraph.load(path).counts() == {
        "n_rna": 7, "n_protein": 5, "n_internal": 5, "n_ppi": 2, "n_ligand_receptor": 2, "n_sequences": 3,
        "n_with_go_text": 4, "n_ensembl_ids": 3}


def test_every_ensembl_id_of_a_gene_is_kept_and_maps(tables, tmp_path):
    # org fixture: A1BG has ENSG00000121410; A2M has ENSG00000175899 and ENSG00000000001 (its node column keeps
    # only the alphabetically first, ENSG00000000001); DUP (201) shares ENSG00000175899, which NCBI's
    # gene2ensembl (ncbi2ensembl) gives to A2M
    assert tables.ensembl_ids.values.tolist() == [
        ["ENSG00000121410", "RNA:1", True], ["ENSG00000000001", "RNA:2", False],
        ["ENSG00000175899", "RNA:2", True], ["ENSG00000175899", "RNA:201", False]]
    path = write_pack(tmp_path / "pack", tables.nodes, tables.edges, tables.sequences, tables.genesets, [],
                      name="tiny", ensembl_ids=tables.ensembl_ids)
    kg = KnowledgeGraph.load(path)
    mapping = kg.map_genes(["ENSG00000175899.12", "ENSG00000000001", "ensg00000121410.3", "ENSG00000175899_PAR_Y"])
    assert mapping.rna_index.tolist() == [1, 1, 0, 1]
    assert kg.counts()["n_ensembl_ids"] == 3
    # a pack without the table (written before it existed) knows one id per gene: A2M's gene2ensembl id
    # then lands on DUP, whose only id it is
    old = write_pack(tmp_path / "old", tables.nodes, tables.edges, tables.sequences, tables.genesets, [])
    (old / "ensembl_ids.parquet").unlink()
    assert KnowledgeGraph.load(old).map_genes(["ENSG00000175899", "ENSG00000000001"]).rna_index.tolist() == [4, 1]


def test_node_text_limit():
    assert node_text("X", "name", ["a" * 10, "b" * 10], limit=30) == ("X: name. GO: aaaaaaaaaa", True)
    assert node_text("X", "name", ["a" * 30], limit=30) == ("X: name.", False)
    assert node_text("X", "n" * 40, [], limit=30) == ("X: " + "n" * 27, False)
    assert node_text("X", "", ["t"]) == ("X. GO: t", True)
