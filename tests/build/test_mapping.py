"""Gene mapping onto the pack's RNA nodes: Ensembl (versioned) ids, symbols, aliases, duplicate sums."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltosg.build import map_adata_genes
from celltosg.errors import UnknownIdentifierError


def _adata(var_names, X=None, **var_columns):
    X = np.arange(1, 3 * len(var_names) + 1, dtype=np.float32).reshape(3, -1) if X is None else X
    return ad.AnnData(X=X, var=pd.DataFrame(var_columns, index=pd.Index(var_names)))


def test_versioned_ensembl_symbols_and_aliases_map(tiny_kg):
    adata = _adata(["ENSG00000000003.7", "GENE5", "alias7", "OLD9", "NOTAGENE"])
    gene_map = map_adata_genes(adata, tiny_kg, force=True)
    np.testing.assert_array_equal(gene_map.rna_index, [3, 5, 7, 9, -1])
    assert gene_map.unmapped == ["NOTAGENE"]
    assert gene_map.report() == {"n_genes": 5, "n_mapped": 4, "n_nodes": 4, "rate": 0.8,
                                 "unmapped_examples": ["NOTAGENE"]}


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


def test_low_mapping_rate_is_an_error_unless_forced(tiny_kg):
    adata = _adata(["GENE1", "foo", "bar", "baz"])
    with pytest.raises(UnknownIdentifierError, match=r"only 1 of 4 genes \(25.0%\).*--force"):
        map_adata_genes(adata, tiny_kg, where="pbmc.h5ad")
    assert map_adata_genes(adata, tiny_kg, force=True).rate == 0.25
