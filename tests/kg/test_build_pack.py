"""The committed human pack: `celltosg kg info` meets the issue's targets; a slow test rebuilds it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from celltosg.cli import app
from celltosg.errors import CellTOSGError
from celltosg.io_utils import dir_bytes
from celltosg.kg import KnowledgeGraph, embedded_pack_path
from celltosg.kg._assemble import build_pack

KEYS = ["n_rna", "n_protein", "n_internal", "n_ppi", "n_ligand_receptor", "n_sequences", "n_with_go_text",
        "n_ensembl_ids"]


def _info(*args) -> dict:
    result = CliRunner().invoke(app, ["kg", "info", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_human_pack_meets_targets():
    counts = _info("--pack", "human")
    assert list(counts) == KEYS
    assert counts["n_protein"] >= 18_000 and counts["n_ppi"] >= 500_000
    assert counts["n_ligand_receptor"] >= 4_000 and counts["n_sequences"] >= 15_000
    assert counts["n_with_go_text"] >= 15_000
    # every Ensembl id of a gene, alternate loci included: more ids than RNA nodes that have one
    kg = KnowledgeGraph.load("human")
    assert counts["n_ensembl_ids"] > (kg.nodes["ensembl_gene"].iloc[:kg.n_rna] != "").sum()
    pack = embedded_pack_path("human")
    assert dir_bytes(pack) <= 60 * 2**20  # the issue-16 budget, node-text embeddings included
    assert json.loads((pack / "pack.json").read_text())["counts"] == counts


def test_every_rna_node_with_a_protein_has_an_internal_edge():
    kg = KnowledgeGraph.load("human")
    nodes, edges = kg.nodes, kg.edges
    internal = edges[edges["kind"] == "internal"]
    protein = nodes.iloc[kg.n_rna:]
    rna = nodes.iloc[:kg.n_rna].reset_index(drop=True)
    linked = set(zip(internal["source"], internal["target"] - kg.n_rna, strict=True))
    row_of = {e: i for i, e in enumerate(rna["entrez"])}
    expected = {(row_of[e], i) for i, e in enumerate(protein["entrez"])}
    assert linked == expected
    assert nodes["text"].str.len().max() <= 512
    ppi = edges[edges["kind"] == "ppi"]
    assert (ppi["source"] < ppi["target"]).all() and (ppi["source"] >= kg.n_rna).all()


@pytest.mark.slow
def test_rebuild_matches_committed_pack(tmp_path):
    """Fetch the offline sources (pip / apt), rebuild the pack and compare counts and checksums."""
    result = CliRunner().invoke(app, ["kg", "build-pack", "--out", str(tmp_path / "human")])
    assert result.exit_code == 0, result.output
    assert _info("--pack", str(tmp_path / "human")) == _info("--pack", "human")
    rebuilt = json.loads((tmp_path / "human" / "pack.json").read_text())
    committed = json.loads((embedded_pack_path("human") / "pack.json").read_text())
    assert rebuilt["files"] == committed["files"]


def test_build_pack_refuses_to_overwrite(tmp_path):
    (tmp_path / "pack").mkdir()
    with pytest.raises(CellTOSGError, match="--overwrite"):
        build_pack(tmp_path / "pack", cache=tmp_path / "cache", fetch=False)
