"""Delimited interaction sources: scNET, STRING, BioGRID tab3, liana omni_resource, CellChatDB."""

from __future__ import annotations

import gzip
import logging

import pytest

from celltosg.errors import MalformedInputError, MissingSourceError
from celltosg.kg.sources import (
    parse_biogrid_tab3,
    parse_cellchat_ligrec,
    parse_liana_omni,
    parse_scnet_ppi,
    parse_string_links,
)


def _write(path, text):
    path.write_text(text)
    return path


def test_scnet_reads_rows_and_counts_malformed(tmp_path, caplog):
    path = _write(tmp_path / "ppi.csv", ",g1_symbol,g2_symbol,conn\n"
                  "0,A1BG,ANXA7,0.25\n1,TP53,MDM2,1.0\n2,,MDM2,0.5\n3,EGFR,GRB2,high\n4,EGFR\n5,EGFR,SOS1,-0.1\n")
    with caplog.at_level(logging.WARNING):
        table, report = parse_scnet_ppi(path)
    assert table.values.tolist() == [["A1BG", "ANXA7", 0.25], ["TP53", "MDM2", 1.0]]
    assert (report.n_rows, report.n_kept, report.n_malformed) == (6, 2, 4)
    assert any("line 4" in e and "empty" in e for e in report.malformed_examples)
    assert any("line 6" in e and "fields" in e for e in report.malformed_examples)
    assert "4 malformed" in caplog.text


def test_scnet_missing_file_and_wrong_header(tmp_path):
    with pytest.raises(MissingSourceError, match="celltosg kg fetch"):
        parse_scnet_ppi(tmp_path / "absent.csv")
    with pytest.raises(MalformedInputError, match=r"lacks columns \['conn'\]"):
        parse_scnet_ppi(_write(tmp_path / "bad.csv", "g1_symbol,g2_symbol,weight\nA,B,1\n"))


@pytest.mark.parametrize("detailed", [False, True])
def test_string_links_plain_and_detailed_gz(tmp_path, detailed):
    header = ("protein1 protein2 neighborhood fusion cooccurence coexpression experimental database "
              "textmining combined_score" if detailed else "protein1 protein2 combined_score")
    pad = " 0 0 0 0 0 0 0" if detailed else ""
    lines = [header,
             f"9606.ENSP00000000233 9606.ENSP00000272298{pad} 490",
             f"9606.ENSP00000000233 9606.ENSP00000253401{pad} 198",
             f"9606.ENSP00000000233 9606.ENSP00000401445{pad} 1001",
             f"9606.ENSP00000000233 9606.ENSP00000418915{pad} x"]
    path = tmp_path / "links.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    table, report = parse_string_links(path, min_score=0.4)
    assert table.values.tolist() == [["ENSP00000000233", "ENSP00000272298", 0.49]]
    assert report.notes == {"below_min_score": 1}
    assert report.n_malformed == 2 and report.n_rows == 4


def test_biogrid_tab3_filters_organism_and_genetic(tmp_path):
    cols = ["#BioGRID Interaction ID", "Entrez Gene Interactor A", "Entrez Gene Interactor B",
            "Official Symbol Interactor A", "Official Symbol Interactor B", "Experimental System Type",
            "Organism ID Interactor A", "Organism ID Interactor B", "Score"]
    rows = [["1", "7157", "4193", "TP53", "MDM2", "physical", "9606", "9606", "-"],
            ["2", "7157", "1956", "TP53", "EGFR", "genetic", "9606", "9606", "-"],
            ["3", "850", "851", "Y1", "Y2", "physical", "559292", "559292", "-"],
            ["4", "-", "4193", "X", "MDM2", "physical", "9606", "9606", "-"]]
    path = _write(tmp_path / "biogrid.tab3.txt", "\n".join("\t".join(r) for r in [cols, *rows]) + "\n")
    table, report = parse_biogrid_tab3(path)
    assert table[["a", "b", "a_symbol", "b_symbol"]].values.tolist() == [["7157", "4193", "TP53", "MDM2"]]
    assert report.notes == {"not_physical": 1, "other_organism": 1} and report.n_malformed == 1
    everything, _ = parse_biogrid_tab3(path, taxon=None, physical_only=False)
    assert len(everything) == 3


def test_liana_consensus_with_complexes_expanded(tmp_path):
    path = _write(tmp_path / "omni.csv", '"","source","target","source_genesymbol","target_genesymbol","resource"\n'
                  '"1","O00182","P08575","LGALS9","PTPRC","consensus"\n'
                  '"2","O14511","COMPLEX:P04626_P21860","NRG2","ERBB2_ERBB3","consensus"\n'
                  '"3","COMPLEX:P1_P2","P3","A_B","C","consensus"\n'
                  '"4","Q1","Q2","X","Y","cellchatdb"\n'
                  '"5","COMPLEX:P1_P2","P3","A","C","consensus"\n')
    table, report = parse_liana_omni(path)
    pairs = sorted(zip(table["ligand"], table["receptor"], table["receptor_uniprot"], strict=True))
    assert pairs == [("A", "C", "P3"), ("B", "C", "P3"), ("LGALS9", "PTPRC", "P08575"),
                     ("NRG2", "ERBB2", "P04626"), ("NRG2", "ERBB3", "P21860")]
    assert report.n_kept == 3 and report.n_malformed == 1 and report.notes["other_resource"] == 1
    all_resources, _ = parse_liana_omni(path, resource=None)
    assert "X" in set(all_resources["ligand"])


def test_cellchat_ligrec_expands_both_sides(tmp_path):
    path = _write(tmp_path / "cc.csv", ",0,1,2,3\n0,TGFB1,TGFBR1_TGFBR2,TGFb,Secreted Signaling\n"
                  "1,INHBA_INHBB,ACVR2A,ACTIVIN,Secreted Signaling\n2,IL2_,IL2RA,IL2,Secreted Signaling\n")
    table, report = parse_cellchat_ligrec(path)
    assert sorted(zip(table["ligand"], table["receptor"], strict=True)) == [
        ("INHBA", "ACVR2A"), ("INHBB", "ACVR2A"), ("TGFB1", "TGFBR1"), ("TGFB1", "TGFBR2")]
    assert set(table["pathway"]) == {"TGFb", "ACTIVIN"}
    assert report.n_malformed == 1 and report.n_kept == 2
