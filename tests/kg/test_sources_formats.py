"""Canonical public formats: UniProt FASTA, NCBI gene_info, GO OBO."""

from __future__ import annotations

import gzip

from celltosg.kg.sources import parse_gene_info, parse_go_obo, parse_uniprot_fasta

FASTA = """>sp|P04637|P53_HUMAN Cellular tumor antigen p53 OS=Homo sapiens OX=9606 GN=TP53 PE=1 SV=4
MEEPQSDPSV
EPPLSQETFS
>tr|A0A024R161|A0A024R161_HUMAN Guanine nucleotide-binding protein OS=Homo sapiens OX=9606 PE=3 SV=1
mgkk
>gi|12345 not a uniprot header
MKV
>sp|P99999|EMPTY_HUMAN Nothing OS=Homo sapiens OX=9606 GN=EMP PE=1 SV=1
>sp|P11111|BAD_HUMAN Bad residues OX=9606
MK1V
"""


def test_uniprot_fasta(tmp_path):
    path = tmp_path / "uniprot.fasta.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(FASTA)
    table, report = parse_uniprot_fasta(path)
    assert table["accession"].tolist() == ["P04637", "A0A024R161"]
    p53 = table.iloc[0]
    assert p53["sequence"] == "MEEPQSDPSVEPPLSQETFS" and p53["reviewed"] and p53["symbol"] == "TP53"
    assert p53["taxon"] == "9606" and p53["description"] == "Cellular tumor antigen p53"
    assert table.iloc[1]["sequence"] == "MGKK" and not table.iloc[1]["reviewed"] and table.iloc[1]["symbol"] == ""
    assert (report.n_rows, report.n_kept, report.n_malformed) == (5, 2, 3)


def test_gene_info(tmp_path):
    header = ("#tax_id\tGeneID\tSymbol\tLocusTag\tSynonyms\tdbXrefs\tchromosome\tmap_location\tdescription\t"
              "type_of_gene\tSymbol_from_nomenclature_authority\tFull_name_from_nomenclature_authority\t"
              "Nomenclature_status\tOther_designations\tModification_date\tFeature_type")
    rows = [
        "9606\t7157\tTP53\t-\tBCC7|LFS1\tMIM:191170|HGNC:HGNC:11998|Ensembl:ENSG00000141510\t17\t17p13.1\t"
        "tumor protein p53\tprotein-coding\tTP53\ttumor protein p53\tO\tx\t20240101\t-",
        "9606\t999999\tLOC1\t-\t-\t-\t1\t-\tuncharacterized LOC1\tncRNA\t-\t-\t-\t-\t20240101\t-",
        "10090\t22059\tTrp53\t-\t-\t-\t11\t-\ttransformation related protein 53\tprotein-coding\t-\t-\t-\t-\t1\t-",
        "9606\tabc\tBAD\t-\t-\t-\t1\t-\tbad\tprotein-coding\t-\t-\t-\t-\t1\t-",
        "9606\t1\tA1BG\ttoo few fields",
    ]
    path = tmp_path / "Homo_sapiens.gene_info"
    path.write_text("\n".join([header, *rows]) + "\n")
    table, report = parse_gene_info(path)
    assert table.to_dict("records") == [
        {"entrez": "7157", "symbol": "TP53", "aliases": "BCC7|LFS1", "full_name": "tumor protein p53",
         "gene_type": "protein-coding", "ensembl_gene": "ENSG00000141510", "taxon": "9606"},
        {"entrez": "999999", "symbol": "LOC1", "aliases": "", "full_name": "uncharacterized LOC1",
         "gene_type": "ncRNA", "ensembl_gene": "", "taxon": "9606"}]
    assert report.notes == {"other_organism": 1} and report.n_malformed == 2


def test_go_obo(tmp_path):
    path = tmp_path / "go-basic.obo"
    path.write_text("format-version: 1.2\nontology: go\n\n"
                    "[Term]\nid: GO:0000001\nname: mitochondrion inheritance\nnamespace: biological_process\n"
                    "is_a: GO:0048308 ! organelle inheritance\n\n"
                    "[Term]\nid: GO:0000006\nname: high-affinity zinc transmembrane transporter activity\n"
                    "namespace: molecular_function\n\n"
                    "[Term]\nid: GO:0000005\nname: obsolete ribosomal chaperone activity\n"
                    "namespace: molecular_function\nis_obsolete: true\n\n"
                    "[Term]\nid: GO:0000007\nnamespace: cellular_component\n\n"
                    "[Typedef]\nid: part_of\nname: part of\n")
    table, report = parse_go_obo(path)
    assert table.values.tolist() == [["GO:0000001", "mitochondrion inheritance", "BP"],
                                     ["GO:0000006", "high-affinity zinc transmembrane transporter activity", "MF"]]
    assert report.notes == {"obsolete": 1} and report.n_malformed == 1 and report.n_rows == 4
