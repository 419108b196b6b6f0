"""Map an AnnData's genes onto the knowledge graph's RNA nodes.

Two routes, in order. Ensembl gene ids first (version stripped), from an id column or the var names,
matched against every Ensembl id the pack holds for a gene. Then, for the genes still unmapped, symbols
(which the pack also matches against aliases) from a symbol column (``feature_name``,
``gene_short_name``, ..., or the one named with ``--gene-column``), then the var names. Genes that land
on the same RNA node are summed.

An input is judged by how much of the pack it measures, not by the share of its own ids that map: a
full transcriptome holds tens of thousands of non-coding ids the pack does not know, which is expected.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from celltosg.errors import MalformedInputError, UnknownIdentifierError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

# An input must measure at least this share of the pack's RNA nodes, and at least MIN_PACK_NODES of them
# on a pack of 2 * MIN_PACK_NODES RNA nodes or more.
MIN_PACK_FRACTION = 0.25
MIN_PACK_NODES = 5000
# var columns holding Ensembl ids, and those holding symbols (tried in this order when none is named).
ID_COLUMNS = ("gene_ids", "gene_id", "ensembl_id", "ensembl_gene_id", "feature_id")
SYMBOL_COLUMNS = ("feature_name", "gene_short_name", "gene_symbols", "gene_symbol", "symbol", "gene_name")
_ENSEMBL_GENE = re.compile(r"^ENS[A-Z]*G\d", re.IGNORECASE)


def required_nodes(n_rna: int, *, fraction: float = MIN_PACK_FRACTION, min_nodes: int = MIN_PACK_NODES) -> int:
    """Fewest of a pack's ``n_rna`` RNA nodes an input must measure to be built without ``--force``.

    ``ceil(fraction * n_rna)``, and at least ``min_nodes`` when the pack has ``2 * min_nodes`` RNA nodes or
    more (a smaller pack is judged by the fraction alone): the human pack (21,846 RNA nodes) needs 5,462,
    a pack of 12,000 needs 5,000, a pack of 40 needs 10.
    """
    floor = min_nodes if n_rna >= 2 * min_nodes else 0
    return max(math.ceil(fraction * n_rna), floor)


@dataclass(frozen=True)
class PackGeneMap:
    """Genes of one input mapped to RNA nodes.

    ``rna_index``: int64 (n_genes,), the RNA node of each gene or -1; ``n_rna``: columns of the result;
    ``unmapped``: names of the genes that found no node; ``routes``: genes mapped by each route and
    source, e.g. ``{"ensembl:var_names": 18000, "symbol:feature_name": 400}``; ``n_unmapped_ensembl``:
    unmapped genes that carry an Ensembl id (mostly non-coding genes, expected).
    """

    rna_index: np.ndarray
    n_rna: int
    unmapped: list[str] = field(default_factory=list)
    routes: dict[str, int] = field(default_factory=dict)
    n_unmapped_ensembl: int = 0

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

    @property
    def n_nodes(self) -> int:
        """Distinct RNA nodes measured."""
        return int(len(np.unique(self.rna_index[self.rna_index >= 0])))

    @property
    def coverage(self) -> float:
        """Fraction of the pack's RNA nodes measured."""
        return self.n_nodes / self.n_rna if self.n_rna else 0.0

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
        """JSON-ready summary: n_genes, n_mapped, n_nodes (distinct nodes hit), rate (of the input's
        genes), coverage (of the pack's RNA nodes), routes, n_unmapped_ensembl, unmapped_examples."""
        return {
            "n_genes": self.n_genes,
            "n_mapped": self.n_mapped,
            "n_nodes": self.n_nodes,
            "rate": round(self.rate, 6),
            "coverage": round(self.coverage, 6),
            "routes": dict(self.routes),
            "n_unmapped_ensembl": self.n_unmapped_ensembl,
            "unmapped_examples": self.unmapped[:20],
        }


def _sources(adata: AnnData, gene_column: str | None, where: str) -> tuple[list, list]:
    """``(name, identifiers)`` lists of the Ensembl route (id columns, var names) and of the symbol route
    (the named or found symbol columns, then the var names); identifiers are str arrays (n_genes,)."""
    var = adata.var
    if gene_column is not None and gene_column not in var.columns:
        raise MalformedInputError(f"{where}: has no var column {gene_column!r} (--gene-column); its var "
                                  f"columns are {list(var.columns)}")
    names = ("var_names", np.asarray(adata.var_names.astype(str)))
    ids = [(c, var[c].astype(str).to_numpy()) for c in ID_COLUMNS if c in var.columns]
    symbol_columns = [gene_column] if gene_column is not None else [c for c in SYMBOL_COLUMNS if c in var.columns]
    symbols = [(c, var[c].astype(str).to_numpy()) for c in symbol_columns]
    return [*ids, names, *symbols], [*symbols, names, *ids]


def _is_ensembl(identifiers: np.ndarray) -> np.ndarray:
    return np.fromiter((bool(_ENSEMBL_GENE.match(i)) for i in identifiers), dtype=bool, count=len(identifiers))


def map_adata_genes(adata: AnnData, kg, *, force: bool = False, gene_column: str | None = None,
                    min_fraction: float = MIN_PACK_FRACTION, min_nodes: int = MIN_PACK_NODES,
                    where: str = "input") -> PackGeneMap:
    """Map the genes of ``adata`` (n_cells, n_genes) onto the RNA nodes of ``kg``: Ensembl ids first, then
    symbols / aliases for the rest (module docstring).

    Parameters
    ----------
    force
        Build an input that measures too few of the pack's RNA nodes (a warning instead of an error).
    gene_column
        var column of symbols to use instead of the ones found automatically (``SYMBOL_COLUMNS``).
    min_fraction, min_nodes
        The refusal rule, :func:`required_nodes`.
    where
        Name of the input, used in messages.

    Raises
    ------
    UnknownIdentifierError
        When the genes measure fewer than :func:`required_nodes` of the pack's RNA nodes and ``force``
        is not set.
    MalformedInputError
        When ``gene_column`` is not a var column.
    """
    index = np.full(adata.n_vars, -1, dtype=np.int64)
    routes: dict[str, int] = {}
    ensembl_sources, symbol_sources = _sources(adata, gene_column, where)
    has_ensembl = np.zeros(adata.n_vars, dtype=bool)
    for route, sources in (("ensembl", ensembl_sources), ("symbol", symbol_sources)):
        for name, identifiers in sources:
            is_ensembl = _is_ensembl(identifiers)
            has_ensembl |= is_ensembl
            todo = np.flatnonzero((index < 0) & (is_ensembl if route == "ensembl" else ~is_ensembl))
            if len(todo):
                index[todo] = kg.map_genes(identifiers[todo]).rna_index
                n = int((index[todo] >= 0).sum())
                if n:
                    routes[f"{route}:{name}"] = routes.get(f"{route}:{name}", 0) + n
    names = np.asarray(adata.var_names.astype(str))
    gene_map = PackGeneMap(rna_index=index, n_rna=kg.n_rna, unmapped=names[index < 0].tolist(), routes=routes,
                           n_unmapped_ensembl=int((has_ensembl & (index < 0)).sum()))
    _log_and_judge(gene_map, kg.name, force=force, where=where,
                   required=required_nodes(kg.n_rna, fraction=min_fraction, min_nodes=min_nodes))
    return gene_map


def _log_and_judge(gene_map: PackGeneMap, pack: str, *, force: bool, where: str, required: int) -> None:
    labels = {"ensembl": "Ensembl id", "symbol": "symbol or alias"}
    by_route = "; ".join(f"{n} by {labels[key.split(':')[0]]} from {key.split(':', 1)[1]}"
                         for key, n in gene_map.routes.items())
    n_unmapped = gene_map.n_genes - gene_map.n_mapped
    logger.info("%s: %d of %d genes map (%s); %d unmapped, %d of them Ensembl ids the pack lacks (non-coding "
                "genes are expected there); %d of the pack's %d RNA nodes measured (%.1f%%)", where,
                gene_map.n_mapped, gene_map.n_genes, by_route or "none", n_unmapped, gene_map.n_unmapped_ensembl,
                gene_map.n_nodes, gene_map.n_rna, 100 * gene_map.coverage)
    if gene_map.n_nodes >= required:
        return
    message = (f"{where}: measures only {gene_map.n_nodes} of the {gene_map.n_rna} RNA nodes of the knowledge "
               f"graph {pack!r} ({100 * gene_map.coverage:.1f}%; {gene_map.n_mapped} of its {gene_map.n_genes} "
               f"genes map, first unmapped: {gene_map.unmapped[:5]})")
    if not force:
        raise UnknownIdentifierError(
            f"{message}; under {required} is refused. Gene identifiers must be human Ensembl ids or symbols "
            f"(var names, an id column such as gene_ids, or a symbol column such as {', '.join(SYMBOL_COLUMNS[:4])}; "
            "name another with --gene-column); fix the identifiers, or pass --force to build a gene panel anyway")
    logger.warning("%s; building anyway (forced)", message)
