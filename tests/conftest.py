"""Shared fixtures: a tiny knowledge-graph pack written by the test session itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.kg import KnowledgeGraph, write_pack

TINY_N_GENES = 40
TINY_N_PROTEINS = 34  # genes 0..33 have a protein; 34..39 are RNA only


def make_tiny_pack(out_dir, *, n_genes: int = TINY_N_GENES, n_proteins: int = TINY_N_PROTEINS, seed: int = 0):
    """Write a small but realistic pack: symbols GENE0.., a PPI ring plus random chords, L->R pairs."""
    rng = np.random.default_rng(seed)
    symbols = [f"GENE{i}" for i in range(n_genes)]
    rna = pd.DataFrame({
        "node_id": [f"RNA:{1000 + i}" for i in range(n_genes)],
        "type": "rna",
        "symbol": symbols,
        "entrez": [str(1000 + i) for i in range(n_genes)],
        "ensembl_gene": [f"ENSG{i:011d}" for i in range(n_genes)],
        "uniprot": "",
        "full_name": [f"gene number {i}" for i in range(n_genes)],
        "aliases": [f"ALIAS{i}|OLD{i}" for i in range(n_genes)],
        "has_go_text": [i % 3 != 0 for i in range(n_genes)],
    })
    rna["text"] = [f"{s}: gene number {i}." + (" GO: signaling" if g else "")
                   for i, (s, g) in enumerate(zip(symbols, rna["has_go_text"], strict=True))]
    protein = rna.iloc[:n_proteins].copy()
    protein["node_id"] = [f"PROTEIN:P{i:05d}" for i in range(n_proteins)]
    protein["type"] = "protein"
    protein["uniprot"] = [f"P{i:05d}" for i in range(n_proteins)]
    nodes = pd.concat([rna, protein], ignore_index=True)
    p0 = n_genes
    internal = pd.DataFrame({"source": np.arange(n_proteins), "target": p0 + np.arange(n_proteins),
                             "kind": "internal", "weight": 1.0, "provenance": "tiny"})
    ring = [(i, (i + 1) % n_proteins) for i in range(n_proteins)]
    chords = {tuple(sorted(rng.choice(n_proteins, 2, replace=False))) for _ in range(2 * n_proteins)}
    pairs = sorted({tuple(sorted(p)) for p in ring} | chords)
    ppi = pd.DataFrame({"source": [p0 + a for a, _ in pairs], "target": [p0 + b for _, b in pairs],
                        "kind": "ppi", "weight": rng.uniform(0.2, 1.0, len(pairs)), "provenance": "tiny"})
    lr = pd.DataFrame({"source": p0 + np.array([0, 1, 2, 3]), "target": p0 + np.array([10, 11, 12, 13]),
                       "kind": "ligand_receptor", "weight": 1.0, "provenance": "tiny"})
    edges = pd.concat([internal, ppi, lr], ignore_index=True)
    alphabet = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    sequences = pd.DataFrame({
        "node_index": p0 + np.arange(0, n_proteins, 2),
        "uniprot": [f"P{i:05d}" for i in range(0, n_proteins, 2)],
        "sequence": ["".join(rng.choice(alphabet, 30 + i)) for i in range(0, n_proteins, 2)],
    })
    genesets = pd.DataFrame(
        [("GO_BP", "GO:0000001", "signaling A", s) for s in symbols[:10]]
        + [("GO_BP", "GO:0000002", "signaling B", s) for s in symbols[5:20]]
        + [("GO_CC", "GO:0000003", "membrane", s) for s in symbols[::2]]
        + [("KEGG", "04010", "04010", s) for s in symbols[20:30]],
        columns=["collection", "term_id", "term_name", "symbol"])
    sources = [{"name": "tiny", "version": "1", "license": "CC0"}]
    return write_pack(out_dir, nodes, edges, sequences, genesets, sources, name="tiny")


@pytest.fixture(scope="session")
def tiny_kg_dir(tmp_path_factory):
    """Directory of a tiny pack (40 RNA, 34 protein nodes)."""
    return make_tiny_pack(tmp_path_factory.mktemp("kg") / "tiny")


@pytest.fixture()
def tiny_kg(tiny_kg_dir):
    """A freshly loaded tiny KnowledgeGraph."""
    return KnowledgeGraph.load(tiny_kg_dir)


# --------------------------------------------------------------------------- TOSG store (store engineer)
TINY_STORE_DONORS = 8
TINY_STORE_CELL_TYPES = ("T cell", "B cell", "monocyte")


def make_tiny_store(path, kg, *, metacells_per_group: int = 10, seed: int = 0, shard_size: int = 64,
                    chunk_rows: int = 16):
    """Write a small store over ``kg``: 8 donors (2 datasets, lung / blood, normal / asthma, both sexes)
    x 3 cell types x ``metacells_per_group`` meta-cells of Poisson counts with cell-type programmes and an
    asthma effect on genes 0..4. Returns ``(TOSGStore, X)`` with X the exact counts (n, kg.n_rna)."""
    from celltosg.store import create_store

    rng = np.random.default_rng(seed)
    stages = ("adult", "middle aged", "young adult", "aged")
    rows, blocks = [], []
    base = rng.gamma(1.0, 2.0, kg.n_rna)
    for d in range(TINY_STORE_DONORS):
        disease = "asthma" if d % 2 else "normal"
        for c, cell_type in enumerate(TINY_STORE_CELL_TYPES):
            size = rng.integers(5, 40, metacells_per_group)
            rate = base.copy()
            rate[c * 10:(c + 1) * 10] *= 4.0
            if disease == "asthma":
                rate[:5] *= 3.0
            blocks.append(rng.poisson(size[:, None] * rate[None, :] / 5.0))
            for m in range(metacells_per_group):
                cell_id = f"ds{d % 2}:donor{d}:{cell_type}:{m}"
                rows.append({
                    "cell_id": cell_id, "n_raw_cells": int(size[m]),
                    "raw_cells": ";".join(f"{cell_id}:r{k}" for k in range(size[m])),
                    "dataset_id": f"ds{d % 2}", "donor_id": f"donor{d}", "source": "CellxGene",
                    "tissue": "lung" if d < 4 else "blood", "tissue_general": "lung" if d < 4 else "blood",
                    "disease": disease, "disease_raw": disease, "cell_type": cell_type,
                    "cell_type_raw": cell_type, "sex": "female" if d % 4 < 2 else "male",
                    "sex_normalized": "female" if d % 4 < 2 else "male",
                    "development_stage_category": stages[d % 4],
                    "development_stage_numeric_age": float(30 + 10 * (d % 4)),
                    "assay": "10x 3' v3", "suspension_type": "cell",
                })
    X = np.concatenate(blocks).astype(np.int64)
    store = create_store(path, X, pd.DataFrame(rows), kg, shard_size=shard_size, chunk_rows=chunk_rows)
    return store, X


@pytest.fixture(scope="session")
def tiny_store_data(tiny_kg_dir, tmp_path_factory):
    """(store directory, exact counts X (240, 40)) of the session's tiny store."""
    store, X = make_tiny_store(tmp_path_factory.mktemp("store") / "tiny", KnowledgeGraph.load(tiny_kg_dir))
    return store.root, X


@pytest.fixture()
def tiny_store(tiny_store_data):
    """A freshly opened tiny TOSGStore (240 meta-cells x 40 RNA nodes, 4 shards, 16-row chunks)."""
    from celltosg.store import TOSGStore

    return TOSGStore.open(tiny_store_data[0])
