"""KnowledgeGraph: loading, identifier mapping, subgraphs and edge indices on the tiny pack."""

from __future__ import annotations

import json

import numpy as np
import pytest

from celltosg.errors import MalformedInputError, MissingSourceError, UnknownIdentifierError
from celltosg.kg import KnowledgeGraph, verify_pack, write_pack
from tests.conftest import TINY_N_GENES, TINY_N_PROTEINS


def test_counts_match_the_fixture(tiny_kg):
    counts = tiny_kg.counts()
    assert counts["n_rna"] == TINY_N_GENES
    assert counts["n_protein"] == TINY_N_PROTEINS
    assert counts["n_internal"] == TINY_N_PROTEINS
    assert counts["n_ligand_receptor"] == 4
    assert counts["n_sequences"] == TINY_N_PROTEINS // 2
    assert counts["n_with_go_text"] == sum(1 for i in range(TINY_N_GENES) if i % 3 != 0) + sum(
        1 for i in range(TINY_N_PROTEINS) if i % 3 != 0)


def test_map_genes_by_every_identifier_kind(tiny_kg):
    ids = ["gene3", "ENSG00000000005.12", "ENSG00000000006", "1007", "alias8", "NOPE", "old9"]
    mapping = tiny_kg.map_genes(ids)
    assert mapping.rna_index.tolist() == [3, 5, 6, 7, 8, -1, 9]
    assert mapping.unmapped == ["NOPE"]
    assert mapping.rate == pytest.approx(6 / 7)


def test_ambiguous_alias_does_not_map_but_primary_symbol_wins(tmp_path, tiny_kg):
    nodes = tiny_kg.nodes.copy()
    nodes.loc[0, "aliases"] = "SHARED|GENE1"
    nodes.loc[2, "aliases"] = "SHARED"
    write_pack(tmp_path / "p", nodes, tiny_kg.edges, tiny_kg.sequences, tiny_kg.genesets, [], name="x")
    kg = KnowledgeGraph.load(tmp_path / "p")
    assert kg.map_genes(["SHARED", "GENE1"]).rna_index.tolist() == [-1, 1]


def test_subgraph_keeps_order_proteins_and_edges_among_kept_nodes(tiny_kg):
    sub = tiny_kg.subgraph(["GENE5", "GENE1", "GENE36", "GENE2", "GENE5", "unknown"])
    assert sub.rna_symbols.tolist() == ["GENE5", "GENE1", "GENE36", "GENE2"]
    assert sub.n_rna == 4 and sub.n_protein == 3  # GENE36 has no protein
    assert sub.nodes["type"].iloc[4:].eq("protein").all()
    # independent expectation: parent PPI pairs among proteins of genes {1, 2, 5}
    parent = tiny_kg.edges
    p0 = TINY_N_GENES
    kept = {p0 + 1, p0 + 2, p0 + 5}
    want = {(s, t) for s, t, k in zip(parent.source, parent.target, parent.kind, strict=True)
            if k == "ppi" and s in kept and t in kept}
    got = {(int(sub.parent_index[s]), int(sub.parent_index[t]))
           for s, t, k in zip(sub.edges.source, sub.edges.target, sub.edges.kind, strict=True) if k == "ppi"}
    assert got == want
    internal = sub.edge_index("internal").numpy()
    assert {(sub.rna_symbols[s], sub.nodes.symbol.iloc[t]) for s, t in internal.T} == {
        ("GENE5", "GENE5"), ("GENE1", "GENE1"), ("GENE2", "GENE2")}
    with pytest.raises(UnknownIdentifierError, match="unknown"):
        tiny_kg.subgraph(["GENE1", "unknown"], strict=True)


def test_ppi_edge_index_is_symmetric_and_directed_kinds_are_not(tiny_kg):
    ppi = tiny_kg.edge_index("ppi").numpy()
    pairs = set(map(tuple, ppi.T))
    assert all((t, s) in pairs for s, t in pairs)
    assert ppi.shape[1] == 2 * tiny_kg.counts()["n_ppi"]
    assert tiny_kg.edge_index("ppi", undirected=False).shape[1] == tiny_kg.counts()["n_ppi"]
    assert tiny_kg.edge_index("ligand_receptor").shape == (2, 4)
    assert tiny_kg.edge_weight("ppi").shape == (ppi.shape[1],)
    with pytest.raises(UnknownIdentifierError):
        tiny_kg.edge_index("bogus")


def test_missing_or_tampered_pack_is_reported(tmp_path, tiny_kg_dir):
    with pytest.raises(MissingSourceError, match="build-pack"):
        KnowledgeGraph.load(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_kg_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert verify_pack(copy) == []
    meta = json.loads((copy / "pack.json").read_text())
    meta["files"]["edges.parquet"] = "0" * 64
    (copy / "pack.json").write_text(json.dumps(meta))
    assert verify_pack(copy) == ["edges.parquet"]


def test_write_pack_rejects_bad_input_and_leaves_nothing(tmp_path, tiny_kg):
    edges = tiny_kg.edges.copy()
    edges.loc[0, "target"] = 10_000
    with pytest.raises(MalformedInputError, match="outside"):
        write_pack(tmp_path / "bad", tiny_kg.nodes, edges, tiny_kg.sequences, tiny_kg.genesets, [])
    assert not any(tmp_path.iterdir())
    nodes = tiny_kg.nodes.iloc[::-1]
    with pytest.raises(MalformedInputError, match="before the protein"):
        write_pack(tmp_path / "bad", nodes, tiny_kg.edges, tiny_kg.sequences, tiny_kg.genesets, [])
    with pytest.raises(MalformedInputError, match="missing columns"):
        write_pack(tmp_path / "bad", tiny_kg.nodes.drop(columns="text"), tiny_kg.edges,
                   tiny_kg.sequences, tiny_kg.genesets, [])
    assert np.all(tiny_kg.nodes.index == np.arange(tiny_kg.n_nodes))
