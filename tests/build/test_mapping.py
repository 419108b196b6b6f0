"""Gene mapping onto the pack's RNA nodes: Ensembl (versioned) ids, symbols, aliases, duplicate sums."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.conftest import make_tiny_pack

from celltosg.build import map_adata_genes, required_nodes
from celltosg.errors import MalformedInputError, UnknownIdentifierError
from celltosg.kg import KnowledgeGraph


def _adata(var_names, X=None, **var_columns):
    X = np.arange(1, 3 * len(var_names) + 1, dtype=np.float32).reshape(3, -1) if X is None else X
    return ad.AnnData(X=X, var=pd.DataFrame(var_columns, index=pd.Index(var_names)))


def test_versioned_ensembl_symbols_and_aliases_map(tiny_kg):
    adata = _adata(["ENSG00000000003.7", "GENE5", "alias7", "OLD9", "NOTAGENE"])
    gene_map = map_adata_genes(adata, tiny_kg, force=True)
    np.testing.assert_array_equal(gene_map.rna_index, [3, 5, 7, 9, -1])
    assert gene_map.unmapped == ["NOTAGENE"]
    assert gene_map.report() == {"n_genes": 5, "n_mapped": 4, "n_nodes": 4, "rate": 0.8, "coverage": 0.1,
                                 "routes": {"ensembl:var_names": 1, "symbol:var_names": 3},
                                 "n_unmapped_ensembl": 0, "unmapped_examples": ["NOTAGENE"]}


def test_symbol_column_rescues_unknown_var_names(tiny_kg):
    adata = _adata(["x1", "x2", "ENSG00000000011"], feature_name=["GENE1", "nothing", "GENE30"])
    gene_map = map_adata_genes(adata, tiny_kg, force=True)
    # the Ensembl var name wins over the (contradicting) symbol column
    np.testing.assert_array_equal(gene_map.rna_index, [1, -1, 11])


def test_duplicates_are_summed_into_one_node(tiny_kg):
    X = np.array([[1, 2, 4, 8], [0, 3, 0, 5]], dtype=np.float32)
    adata = _adata(["GENE2", "ALIAS2", "GENE0", "UNKNOWN"], X=sp.csr_matrix(X))
    gene_map = map_adata_genes(adata, tiny_kg, force=True)
    out = gene_map.apply(adata.X).toarray()
    expected = np.zeros((2, tiny_kg.n_rna))
    for j, node in enumerate(gene_map.rna_index):  # naive reference: add each gene's column to its node
        if node >= 0:
            expected[:, node] += X[:, j]
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (2, 40) and out[0, 2] == 3 and out[1, 2] == 3 and out[0, 0] == 4


def test_pack_coverage_rule_on_each_side_of_its_threshold(tiny_kg):
    # 25% of the tiny pack's 40 RNA nodes is 10; the unknown ids do not count against the input
    nine = _adata([f"GENE{i}" for i in range(9)] + [f"LINC{i}" for i in range(100)])
    with pytest.raises(UnknownIdentifierError, match=r"pbmc.h5ad: measures only 9 of the 40 RNA nodes.*--force"):
        map_adata_genes(nine, tiny_kg, where="pbmc.h5ad")
    assert map_adata_genes(nine, tiny_kg, force=True).n_nodes == 9
    ten = _adata([f"GENE{i}" for i in range(10)] + [f"LINC{i}" for i in range(100)])
    assert map_adata_genes(ten, tiny_kg).n_nodes == 10


def test_required_nodes_hand_computed():
    assert required_nodes(21_846) == 5_462  # ceil(0.25 * 21,846)
    assert required_nodes(12_000) == 5_000  # the 5,000 floor binds (25% is 3,000)
    assert required_nodes(10_000) == 5_000 and required_nodes(9_999) == 2_500  # floor only from 10,000 nodes
    assert required_nodes(40) == 10


def test_five_thousand_node_floor_on_each_side(tmp_path):
    kg = KnowledgeGraph.load(make_tiny_pack(tmp_path / "mid", n_genes=12_000))
    with pytest.raises(UnknownIdentifierError, match="measures only 4999 of the 12000 RNA nodes"):
        map_adata_genes(_adata([f"GENE{i}" for i in range(4_999)]), kg)
    assert map_adata_genes(_adata([f"GENE{i}" for i in range(5_000)]), kg).n_nodes == 5_000


@pytest.fixture
def alt_kg(tiny_kg):
    """The tiny pack with an Ensembl id table: genes 0..19 also carry an alternate-locus id ENSG9..."""
    primary = pd.DataFrame({"ensembl_gene": [f"ENSG{i:011d}" for i in range(40)],
                            "node_id": [f"RNA:{1000 + i}" for i in range(40)]})
    alternate = pd.DataFrame({"ensembl_gene": [f"ENSG9{i:010d}" for i in range(20)],
                              "node_id": [f"RNA:{1000 + i}" for i in range(20)]})
    return KnowledgeGraph(tiny_kg.nodes, tiny_kg.edges, name="tiny", checksum="x",
                          ensembl_ids=pd.concat([primary, alternate]))


def test_primary_and_alternate_ids_then_symbols_map_every_pack_gene(alt_kg):
    # genes 0..9 by versioned primary ids, 10..19 by versioned alternate-locus ids, 20..29 by an id the
    # pack lacks (an older release) plus their symbol, 30..34 by alias, 35..39 by PAR_Y ids; 30
    # non-coding ids (unknown, with lncRNA symbols); GENE3 again under an unknown id and its old symbol
    names = ([f"ENSG{i:011d}.{i % 4 + 1}" for i in range(10)] + [f"ENSG9{i:010d}.2" for i in range(10, 20)]
             + [f"ENSG8{i:010d}.1" for i in range(20, 35)] + [f"ENSG{i:011d}.3_PAR_Y" for i in range(35, 40)]
             + [f"ENSG7{k:010d}.1" for k in range(30)] + ["ENSG80000000099.1"])
    symbols = ([f"WRONG{i}" for i in range(20)] + [f"GENE{i}" for i in range(20, 30)]
               + [f"alias{i}" for i in range(30, 35)] + ["" for _ in range(35, 40)]
               + [f"LINC{k}" for k in range(30)] + ["OLD3"])
    adata = _adata(names, feature_name=symbols)
    gene_map = map_adata_genes(adata, alt_kg, where="real.h5ad")
    np.testing.assert_array_equal(gene_map.rna_index, list(range(40)) + [-1] * 30 + [3])
    assert gene_map.n_nodes == 40 and gene_map.coverage == 1.0
    assert gene_map.routes == {"ensembl:var_names": 25, "symbol:feature_name": 16}
    assert gene_map.n_unmapped_ensembl == 30 and gene_map.unmapped == names[40:70]
    # the duplicate of GENE3 is summed onto node 3
    out = gene_map.apply(adata.X).toarray()
    np.testing.assert_array_equal(out[:, 3], adata.X[:, 3] + adata.X[:, 70])


def test_gene_column_named_or_found(alt_kg):
    names = [f"ENSG8{i:010d}" for i in range(12)]
    found = _adata(names, gene_short_name=[f"GENE{i}" for i in range(12)])
    assert map_adata_genes(found, alt_kg).routes == {"symbol:gene_short_name": 12}
    named = _adata(names, feature_name=["x"] * 12, mine=[f"GENE{i}" for i in range(12)])
    assert map_adata_genes(named, alt_kg, gene_column="mine").routes == {"symbol:mine": 12}
    with pytest.raises(MalformedInputError, match=r"no var column 'nope' \(--gene-column\).*feature_name"):
        map_adata_genes(named, alt_kg, gene_column="nope")


# GRCh38 primary-assembly ids (NCBI gene2ensembl, org.Hs.eg.db 3.16 table ncbi2ensembl) of genes the issue
# names; for the first four an alternate-locus id sorts first, so the node's single ensembl_gene column
# holds that one and only the id table knows the primary id.
PRIMARY_IDS = {"CCL3": "ENSG00000277632", "GGNBP2": "ENSG00000278311", "SYNRG": "ENSG00000275066",
               "SRCIN1": "ENSG00000277363", "CCL18": "ENSG00000275385", "PCGF2": "ENSG00000277258"}


def test_human_pack_maps_primary_ids_of_genes_stored_under_an_alternate_id():
    kg = KnowledgeGraph.load("human")
    index = kg.map_genes([f"{e}.5" for e in PRIMARY_IDS.values()]).rna_index
    assert kg.rna_symbols[index].tolist() == list(PRIMARY_IDS)
    column = kg.nodes.iloc[:kg.n_rna].set_index("symbol")["ensembl_gene"]
    assert [column[s] == e for s, e in PRIMARY_IDS.items()] == [False] * 4 + [True] * 2


def test_human_pack_threshold_on_each_side():
    kg = KnowledgeGraph.load("human")
    symbols = kg.rna_symbols
    with pytest.raises(UnknownIdentifierError, match="measures only 5461 of the 21846 RNA nodes"):
        map_adata_genes(_adata(symbols[:5_461]), kg)
    assert map_adata_genes(_adata(symbols[:5_462]), kg).n_nodes == 5_462
