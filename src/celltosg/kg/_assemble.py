"""Assemble a knowledge-graph pack from parsed sources and write it with :func:`write_pack`.

RNA nodes are the protein-coding genes of org.Hs.eg.db plus any other gene named by an interaction
source; each gene with a UniProt id gets one protein node (an accession with a Swiss-Prot sequence is
preferred). Every Ensembl gene id org.Hs.eg.db lists for an RNA node goes to the Ensembl id table (a gene
on an alternate locus or patch has one id per locus), flagged ``preferred`` where NCBI's gene2ensembl
names the pair. Edges: ``internal`` RNA -> its protein, ``ppi`` between proteins (once per unordered pair),
``ligand_receptor`` ligand protein -> receptor protein (deduplicated, provenance kept).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import CellTOSGError
from celltosg.kg._fetch import SOURCES, default_cache, fetch_all, source_file, source_version
from celltosg.kg.sources import (
    OrgDb,
    ParseReport,
    parse_cellchat_ligrec,
    parse_liana_omni,
    parse_scnet_ppi,
    read_blast_protein_db,
    read_go_terms,
    read_orgdb,
)
from celltosg.progress import progress

log = logging.getLogger(__name__)

MAX_TEXT = 512
GO_ROOTS = frozenset({"GO:0008150", "GO:0003674", "GO:0005575"})  # the three ontology roots
_ONTOLOGY_ORDER = {"BP": 0, "MF": 1, "CC": 2}


@dataclass
class Interactions:
    """Gene-level interactions to place on protein nodes: ``a``, ``b`` symbols, ``weight``, ``provenance``.

    ``parsed`` holds the reports of the parsers that produced ``table``.
    """

    kind: str  # "ppi" | "ligand_receptor"
    table: pd.DataFrame
    parsed: list[ParseReport]


@dataclass
class PackTables:
    """The pack frames plus the parse reports of every source."""

    nodes: pd.DataFrame
    edges: pd.DataFrame
    sequences: pd.DataFrame
    genesets: pd.DataFrame
    reports: list[ParseReport] = field(default_factory=list)
    ensembl_ids: pd.DataFrame | None = None


def _map_symbols(symbols: pd.Series, symbol_map: dict[str, str], report: ParseReport) -> pd.Series:
    """Entrez ids for ``symbols`` (case-insensitive, aliases allowed); unmapped ones listed in the report."""
    entrez = symbols.str.upper().map(symbol_map)
    report.unknown = sorted(set(report.unknown) | set(symbols[entrez.isna()]))
    return entrez


def _choose_proteins(genes: pd.DataFrame, uniprot: pd.DataFrame, with_sequence: set[str]) -> pd.Series:
    """One accession per gene (Entrez -> UniProt).

    Preference: has a Swiss-Prot sequence, then a 6-character (Swiss-Prot style) accession, then the
    alphabetical first. Genes coding the same protein (e.g. the histone clusters) may share one.
    """
    links = uniprot[uniprot["entrez"].isin(genes["entrez"])].copy()
    links["_no_seq"] = ~links["uniprot"].isin(with_sequence)
    links["_long"] = links["uniprot"].str.len() != 6
    links = links.sort_values(["entrez", "_no_seq", "_long", "uniprot"]).drop_duplicates("entrez")
    return links.set_index("entrez")["uniprot"]


def protein_node_ids(uniprot: pd.Series, entrez: pd.Series) -> pd.Series:
    """``PROTEIN:<uniprot>``, or ``PROTEIN:<uniprot>:<entrez>`` for an accession shared by several genes."""
    ids = "PROTEIN:" + uniprot
    shared = uniprot.duplicated(keep=False)
    return ids.where(~shared, ids + ":" + entrez)


def _go_text_terms(orgdb: OrgDb, go_terms: pd.DataFrame) -> pd.Series:
    """Entrez -> list of GO term names for the node text, BP then MF then CC, specific terms first.

    Within an ontology terms are ordered by how many genes carry them (fewest first), then by name;
    the ontology roots and ids unknown to GO.db are left out.
    """
    go = orgdb.go.drop_duplicates(["entrez", "go_id"])
    go = go[~go["go_id"].isin(GO_ROOTS)].merge(go_terms[["go_id", "term"]], on="go_id", how="inner")
    go["_n_genes"] = go.groupby("go_id")["entrez"].transform("size")
    go["_ont"] = go["ontology"].map(_ONTOLOGY_ORDER)
    go = go.sort_values(["entrez", "_ont", "_n_genes", "term"])
    return go.groupby("entrez", sort=False)["term"].agg(list)


def node_text(symbol: str, full_name: str, terms: list[str], limit: int = MAX_TEXT) -> tuple[str, bool]:
    """``"<symbol>: <full name>. GO: t1; t2; ..."`` with whole terms up to ``limit`` characters.

    Returns the text and whether at least one GO term fit.
    """
    base = f"{symbol}: {full_name}." if full_name else f"{symbol}."
    base = base[:limit]
    text, n_terms = base, 0
    for term in terms:
        candidate = f"{text}{' GO: ' if n_terms == 0 else '; '}{term}"
        if len(candidate) > limit:
            break
        text, n_terms = candidate, n_terms + 1
    return text, n_terms > 0


def _interaction_edges(inter: Interactions, symbol_map: dict[str, str],
                       protein_of: pd.Series) -> tuple[pd.DataFrame, ParseReport]:
    """Map one interaction table onto protein node indices; the report counts every dropped row."""
    table = inter.table
    report = ParseReport(f"{inter.kind} edges onto protein nodes", n_rows=len(table))
    gene_a = _map_symbols(table["a"], symbol_map, report)
    gene_b = _map_symbols(table["b"], symbol_map, report)
    a, b = gene_a.map(protein_of), gene_b.map(protein_of)
    mapped = gene_a.notna() & gene_b.notna()
    keep = a.notna() & b.notna()
    report.note("unknown_symbol", int((~mapped).sum()))
    report.note("gene_without_protein", int((mapped & ~keep).sum()))
    edges = pd.DataFrame({"source": a[keep].astype(np.int64), "target": b[keep].astype(np.int64),
                          "weight": table.loc[keep, "weight"], "provenance": table.loc[keep, "provenance"]})
    loops = edges["source"] == edges["target"]
    report.note("self_loop", int(loops.sum()))
    edges = edges[~loops]
    if inter.kind == "ppi":
        lo = np.minimum(edges["source"], edges["target"])
        hi = np.maximum(edges["source"], edges["target"])
        edges = edges.assign(source=lo, target=hi)
    grouped = edges.groupby(["source", "target"], sort=True).agg(
        weight=("weight", "max"), provenance=("provenance", lambda p: "|".join(sorted(set(p)))))
    report.note("duplicate", len(edges) - len(grouped))
    out = grouped.reset_index()
    out["kind"] = inter.kind
    report.n_kept = len(out)
    return out, report


def assemble(orgdb: OrgDb, go_terms: pd.DataFrame, interactions: list[Interactions],
             sequences: pd.DataFrame) -> PackTables:
    """Build the pack frames (columns as in docs/architecture.md) from parsed sources.

    Parameters
    ----------
    orgdb
        The gene table (:func:`read_orgdb`).
    go_terms
        ``go_id``, ``term``, ``ontology`` (:func:`read_go_terms` or :func:`parse_go_obo`).
    interactions
        Gene-symbol interaction tables (``a``, ``b``, ``weight``, ``provenance``) of kind ``ppi`` or
        ``ligand_receptor`` (directed a -> b).
    sequences
        ``accession``, ``sequence`` for any proteins (only those chosen as protein nodes are kept).
    """
    symbol_map = orgdb.symbol_map()
    named: set[str] = set()
    for inter in interactions:
        for column in ("a", "b"):
            named.update(inter.table[column].str.upper().map(symbol_map).dropna())
    genes = orgdb.genes[(orgdb.genes["gene_type"] == "protein-coding") | orgdb.genes["entrez"].isin(named)]
    genes = genes.assign(_id=genes["entrez"].astype(int)).sort_values("_id").reset_index(drop=True)
    n_rna = len(genes)

    first_ensembl = orgdb.ensembl.sort_values("ensembl_gene").drop_duplicates("entrez").set_index("entrez")
    alias = orgdb.aliases[orgdb.aliases["entrez"].isin(genes["entrez"])]
    alias = alias.merge(genes[["entrez", "symbol"]], on="entrez")
    alias = alias[alias["alias"] != alias["symbol"]].drop_duplicates(["entrez", "alias"])
    alias_text = alias.sort_values("alias").groupby("entrez")["alias"].agg("|".join)
    terms = _go_text_terms(orgdb, go_terms)
    texts = [node_text(s, f, terms.get(e, []))
             for e, s, f in zip(genes["entrez"], genes["symbol"], genes["full_name"], strict=True)]
    rna = pd.DataFrame({
        "node_id": "RNA:" + genes["entrez"], "type": "rna", "symbol": genes["symbol"],
        "entrez": genes["entrez"], "ensembl_gene": genes["entrez"].map(first_ensembl["ensembl_gene"]).fillna(""),
        "uniprot": "", "full_name": genes["full_name"], "aliases": genes["entrez"].map(alias_text).fillna(""),
        "text": [t for t, _ in texts], "has_go_text": [g for _, g in texts],
    })

    accession = _choose_proteins(genes, orgdb.uniprot, set(sequences["accession"]))
    has_protein = rna["entrez"].isin(accession.index).to_numpy()
    protein = rna[has_protein].copy()
    protein["type"] = "protein"
    protein["uniprot"] = protein["entrez"].map(accession)
    protein["node_id"] = protein_node_ids(protein["uniprot"], protein["entrez"])
    nodes = pd.concat([rna, protein], ignore_index=True)
    protein_index = pd.Series(np.arange(n_rna, len(nodes)), index=protein["entrez"].to_numpy())

    internal = pd.DataFrame({"source": np.flatnonzero(has_protein), "target": protein_index.to_numpy(),
                             "weight": 1.0, "provenance": "org.Hs.eg.db", "kind": "internal"})
    mapped = [_interaction_edges(i, symbol_map, protein_index) for i in interactions]
    edges = pd.concat([internal, *(e for e, _ in mapped)], ignore_index=True)
    edges = edges.astype({"source": "int32", "target": "int32", "weight": "float32"})

    seq = sequences.drop_duplicates("accession").set_index("accession")["sequence"]
    with_seq = protein["uniprot"].isin(seq.index).to_numpy()
    seq_table = pd.DataFrame({"node_index": protein_index.to_numpy()[with_seq].astype(np.int32),
                              "uniprot": protein["uniprot"].to_numpy()[with_seq]})
    seq_table["sequence"] = seq_table["uniprot"].map(seq)

    genesets = _genesets(orgdb, go_terms, genes)
    ensembl = orgdb.ensembl[orgdb.ensembl["entrez"].isin(genes["entrez"])]
    ncbi = pd.MultiIndex.from_frame(orgdb.ncbi2ensembl[["entrez", "ensembl_gene"]])
    ensembl_ids = pd.DataFrame({"ensembl_gene": ensembl["ensembl_gene"], "node_id": "RNA:" + ensembl["entrez"],
                                "preferred": pd.MultiIndex.from_frame(ensembl[["entrez", "ensembl_gene"]]).isin(ncbi)})
    log.info("assembled %d RNA + %d protein nodes, %d edges, %d sequences, %d gene-set rows",
             n_rna, len(protein), len(edges), len(seq_table), len(genesets))
    reports = [orgdb.report, *(r for i in interactions for r in i.parsed), *(r for _, r in mapped)]
    return PackTables(nodes, edges, seq_table, genesets, reports, ensembl_ids)


def _genesets(orgdb: OrgDb, go_terms: pd.DataFrame, genes: pd.DataFrame) -> pd.DataFrame:
    """Long-format gene sets over the RNA genes: GO (propagated annotations, GO.db names) and KEGG."""
    symbols = genes.set_index("entrez")["symbol"]
    go = orgdb.go_all[orgdb.go_all["entrez"].isin(symbols.index)]
    go = go.merge(go_terms[["go_id", "term"]], on="go_id", how="inner")
    go_sets = pd.DataFrame({"collection": "GO_" + go["ontology"], "term_id": go["go_id"],
                            "term_name": go["term"], "symbol": go["entrez"].map(symbols)})
    kegg = orgdb.kegg[orgdb.kegg["entrez"].isin(symbols.index)]
    kegg_ids = "hsa" + kegg["path_id"]
    kegg_sets = pd.DataFrame({"collection": "KEGG", "term_id": kegg_ids, "term_name": kegg_ids,
                              "symbol": kegg["entrez"].map(symbols)})
    sets = pd.concat([go_sets, kegg_sets], ignore_index=True).drop_duplicates(["collection", "term_id", "symbol"])
    return sets.sort_values(["collection", "term_id", "symbol"]).reset_index(drop=True)


def _ppi_scnet(cache: Path) -> Interactions:
    parsed = parse_scnet_ppi(source_file("scnet", "ppi", cache))
    return Interactions("ppi", parsed.table.assign(provenance="scNET"), [parsed.report])


def _ligand_receptor(cache: Path) -> Interactions:
    liana = parse_liana_omni(source_file("liana", "omnipath", cache), resource="consensus")
    cellchat = parse_cellchat_ligrec(source_file("commot", "cellchat", cache))
    table = pd.concat([
        pd.DataFrame({"a": liana.table["ligand"], "b": liana.table["receptor"], "provenance": "liana_consensus"}),
        pd.DataFrame({"a": cellchat.table["ligand"], "b": cellchat.table["receptor"], "provenance": "CellChatDB"}),
    ], ignore_index=True).assign(weight=1.0)
    return Interactions("ligand_receptor", table, [liana.report, cellchat.report])


def _sequences(cache: Path, wanted: set[str]) -> tuple[pd.DataFrame, list[ParseReport]]:
    roles = list(SOURCES["metastudent-data"].files)
    parsed = [read_blast_protein_db(source_file("metastudent-data", role, cache), accessions=wanted)
              for role in progress(roles, description="reading BLAST databases")]
    table = pd.concat([p.table for p in parsed], ignore_index=True).drop_duplicates("accession")
    return table, [p.report for p in parsed]


def _source_records(cache: Path) -> list[dict]:
    return [{"name": s.name, "version": source_version(s.name, cache), "license": s.license,
             "files": sorted(s.files.values())} for s in SOURCES.values()]


@dataclass
class BuildResult:
    """Where the pack went, its counts and every parse report."""

    path: Path
    counts: dict[str, int]
    reports: list[ParseReport]


def build_pack(out_dir: str | os.PathLike, *, cache: str | os.PathLike | None = None, fetch: bool = True,
               name: str = "human", overwrite: bool = False) -> BuildResult:
    """Fetch (unless ``fetch=False``) and parse the offline sources, assemble and write the human pack.

    The pack ships the frozen MiniLM embeddings of every node's text (computed through the cache).
    """
    from celltosg.encode import MiniLMEncoder, encode_texts
    from celltosg.kg import write_pack
    from celltosg.kg._pack import pack_counts

    if Path(out_dir).exists() and not overwrite:
        raise CellTOSGError(f"{out_dir} already exists; choose another --out or pass --overwrite to replace it.")
    cache = Path(cache) if cache is not None else default_cache()
    if fetch:
        fetch_all(cache)
    orgdb = read_orgdb(source_file("org.Hs.eg.db", "orgdb", cache))
    go_terms = read_go_terms(source_file("GO.db", "godb", cache))
    interactions = [_ppi_scnet(cache), _ligand_receptor(cache)]
    sequences, sequence_reports = _sequences(cache, set(orgdb.uniprot["uniprot"]))
    tables = assemble(orgdb, go_terms.table, interactions, sequences)
    tables.reports[1:1] = [go_terms.report, *sequence_reports]
    for report in tables.reports[-len(interactions):]:
        report.emit()
    encoder = MiniLMEncoder()
    vectors = encode_texts(tables.nodes["text"].fillna("").astype(str).tolist(), encoder=encoder)
    path = write_pack(out_dir, tables.nodes, tables.edges, tables.sequences, tables.genesets,
                      _source_records(cache), name=name, overwrite=overwrite, ensembl_ids=tables.ensembl_ids,
                      text_embeddings=(encoder.name, vectors))
    counts = pack_counts(tables.nodes, tables.edges, tables.sequences, tables.ensembl_ids)
    return BuildResult(path, counts, tables.reports)
