"""Map an AnnData's genes onto the knowledge graph's RNA nodes.

Every gene is looked up by each of its identifiers in turn: Ensembl ids (version stripped) from the
var names or an id column first, then symbols (``feature_name``, ``gene_symbols``, ...), which the pack
also matches against aliases. Genes that land on the same RNA node are summed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from celltosg.errors import UnknownIdentifierError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

MIN_MAPPING_RATE = 0.5
# var columns tried after the var names, identifiers before symbols.
ID_COLUMNS = ("gene_ids", "gene_id", "ensembl_id", "ensembl_gene_id", "feature_id")
SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_symbol", "symbol", "gene_name")


@dataclass(frozen=True)
class PackGeneMap:
    """Genes of one input mapped to RNA nodes.

    ``rna_index``: int64 (n_genes,), the RNA node of each gene or -1; ``n_rna``: columns of the result;
    ``unmapped``: names of the genes that found no node.
    """

    rna_index: np.ndarray
    n_rna: int
    unmapped: list[str] = field(default_factory=list)

    @property
    def n_genes(self) -> int:
        return len(self.rna_index)

    @property
    def n_mapped(self) -> int:
        return int((self.rna_index >= 0).sum())

    @property
    def rate(self) -> float:
        """Fraction of the input genes that mapped."""
        return self.n_mapped / self.n_genes if self.n_genes else 0.0

    def matrix(self) -> sp.csr_matrix:
        """(n_genes, n_rna) 0/1 matrix sending each mapped gene to its node."""
        genes = np.flatnonzero(self.rna_index >= 0)
        ones = np.ones(len(genes), dtype=np.float64)
        return sp.csr_matrix((ones, (genes, self.rna_index[genes])), shape=(self.n_genes, self.n_rna))

    def apply(self, X) -> sp.csr_matrix:
        """Counts per RNA node: X (n_cells, n_genes) -> CSR float64 (n_cells, n_rna), duplicates summed."""
        X = sp.csr_matrix(X, dtype=np.float64)
        if X.shape[1] != self.n_genes:
            raise ValueError(f"X has {X.shape[1]} genes, the mapping {self.n_genes}")
        out = (X @ self.matrix()).tocsr()
        out.sort_indices()
        return out

    def report(self) -> dict:
        """JSON-ready summary: n_genes, n_mapped, n_nodes (distinct nodes hit), rate, unmapped_examples."""
        return {
            "n_genes": self.n_genes,
            "n_mapped": self.n_mapped,
            "n_nodes": int(len(np.unique(self.rna_index[self.rna_index >= 0]))),
            "rate": round(self.rate, 6),
            "unmapped_examples": self.unmapped[:20],
        }


def _identifier_lists(adata: AnnData) -> list[np.ndarray]:
    """Candidate identifiers of every gene, most specific first: id columns, var names, symbol columns."""
    var = adata.var
    lists = [var[c].astype(str).to_numpy() for c in ID_COLUMNS if c in var.columns]
    lists.append(np.asarray(adata.var_names.astype(str)))
    lists += [var[c].astype(str).to_numpy() for c in SYMBOL_COLUMNS if c in var.columns]
    return lists


def map_adata_genes(adata: AnnData, kg, *, force: bool = False, min_rate: float = MIN_MAPPING_RATE,
                    where: str = "input") -> PackGeneMap:
    """Map the genes of ``adata`` (n_cells, n_genes) onto the RNA nodes of ``kg``.

    Parameters
    ----------
    force
        Accept a mapping rate under ``min_rate`` (logged as a warning instead of an error).
    where
        Name of the input, used in messages.

    Raises
    ------
    UnknownIdentifierError
        When fewer than ``min_rate`` of the genes map and ``force`` is not set.
    """
    index = np.full(adata.n_vars, -1, dtype=np.int64)
    for identifiers in _identifier_lists(adata):
        todo = np.flatnonzero(index < 0)
        if not len(todo):
            break
        index[todo] = kg.map_genes(identifiers[todo]).rna_index
    names = np.asarray(adata.var_names.astype(str))
    gene_map = PackGeneMap(rna_index=index, n_rna=kg.n_rna, unmapped=names[index < 0].tolist())
    logger.info("%s: %d of %d genes (%.1f%%) map to %d RNA nodes of pack %s", where, gene_map.n_mapped,
                gene_map.n_genes, 100 * gene_map.rate, gene_map.report()["n_nodes"], kg.name)
    if gene_map.rate < min_rate:
        message = (f"{where}: only {gene_map.n_mapped} of {gene_map.n_genes} genes ({100 * gene_map.rate:.1f}%) "
                   f"map to the knowledge graph {kg.name!r} (first unmapped: {gene_map.unmapped[:5]})")
        if not force:
            raise UnknownIdentifierError(
                f"{message}; under {100 * min_rate:.0f}% is refused. Gene identifiers must be human "
                "symbols or Ensembl ids (in var names or a var column such as feature_name / gene_ids); "
                "fix the identifiers or pass --force to build anyway")
        logger.warning("%s; building anyway (forced)", message)
    return gene_map
