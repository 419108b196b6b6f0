"""Protein-coding genes mapped by Ensembl id alone, on a file listing each gene's primary-assembly id.

The file: one gene per protein-coding gene of org.Hs.eg.db (genetype), named by its GRCh38 primary
Ensembl id, taken from the ``ncbi2ensembl`` table (NCBI's gene2ensembl, which matches NCBI and Ensembl
annotation on the primary assembly; the pack's id table comes from the wider ``ensembl`` table, which also
lists alternate-locus and patch ids). Genes with no such id, or several, are counted and left out. Ids
get a ``.1`` version suffix, as files carry versions. A ``feature_name`` column holds the symbols.

Each pack is then asked to map the file by Ensembl id alone (var names only) and by Ensembl id then
symbol; a gene counts as mapped when it lands on its own RNA node (same Entrez id).

    python benchmarks/ensembl_primary_ids.py --pack /tmp/old_pack --pack human [--cache DIR] [--out F.h5ad]

Compare a pack built before the Ensembl id table (only the nodes' ``ensembl_gene``) with the current one.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltosg.build import map_adata_genes
from celltosg.kg import KnowledgeGraph
from celltosg.kg._fetch import source_file

_QUERY = ("SELECT g.gene_id AS entrez, i.symbol AS symbol, n.ensembl_id AS ensembl FROM genes g "
          "JOIN genetype t ON t._id = g._id JOIN gene_info i ON i._id = g._id "
          "LEFT JOIN ncbi2ensembl n ON n._id = g._id WHERE t.gene_type = ? ORDER BY g._id, n.ensembl_id")


def primary_id_file(orgdb: Path) -> tuple[ad.AnnData, dict[str, int]]:
    """(3 cells, n_genes) AnnData named by primary ids, with ``entrez`` and ``feature_name`` var columns."""
    con = sqlite3.connect(f"{orgdb.resolve().as_uri()}?mode=ro", uri=True)
    try:
        table = pd.read_sql_query(_QUERY, con, params=("protein-coding",))
    finally:
        con.close()
    n_ids = table.dropna(subset=["ensembl"]).groupby("entrez")["ensembl"].nunique().reindex(
        table["entrez"].unique(), fill_value=0)
    one = table[table["entrez"].isin(n_ids.index[n_ids == 1])].drop_duplicates("entrez")
    counts = {"protein_coding": int(len(n_ids)), "one_primary_id": int((n_ids == 1).sum()),
              "no_primary_id": int((n_ids == 0).sum()), "several_primary_ids": int((n_ids > 1).sum())}
    var = pd.DataFrame({"entrez": one["entrez"].astype(str).to_numpy(), "feature_name": one["symbol"].to_numpy()},
                       index=pd.Index(one["ensembl"] + ".1"))
    return ad.AnnData(X=sp.csr_matrix(np.ones((3, len(var)), dtype=np.float32)), var=var), counts


def mapped_to_own_node(adata: ad.AnnData, kg: KnowledgeGraph, *, symbols: bool) -> int:
    """Genes of ``adata`` that land on the RNA node of their own Entrez id."""
    file = adata if symbols else ad.AnnData(X=adata.X, var=pd.DataFrame(index=adata.var_names))
    index = map_adata_genes(file, kg, force=True, where="primary-id file").rna_index
    own = kg.nodes["entrez"].to_numpy()[: kg.n_rna]
    hit = index >= 0
    return int((own[index[hit]] == adata.var["entrez"].to_numpy()[hit]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", action="append", required=True, help="'human' or a pack directory (repeat).")
    parser.add_argument("--cache", default=None, help="Source cache of `celltosg kg fetch`.")
    parser.add_argument("--out", default=None, help="Also write the primary-id file here (.h5ad).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    adata, counts = primary_id_file(source_file("org.Hs.eg.db", "orgdb", args.cache))
    print(f"org.Hs.eg.db protein-coding genes: {counts}")
    if args.out:
        adata.write_h5ad(args.out)
    for pack in args.pack:
        kg = KnowledgeGraph.load(pack)
        by_id = mapped_to_own_node(adata, kg, symbols=False)
        combined = mapped_to_own_node(adata, kg, symbols=True)
        print(f"{pack}: n_ensembl_ids {kg.counts()['n_ensembl_ids']}; of {adata.n_vars} protein-coding genes, "
              f"{by_id} map by Ensembl id alone ({adata.n_vars - by_id} lost), {combined} by Ensembl id then "
              "symbol")


if __name__ == "__main__":
    main()
