"""A simulated multi-tissue, multi-donor store for loader tests (brain / Alzheimer, lung / adenocarcinoma)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.kg import KnowledgeGraph

COHORT_CELL_TYPES = {
    "brain": ("neuron", "astrocyte", "microglial cell", "unknown"),
    "lung": ("type II pneumocyte", "macrophage", "T cell", "cell"),
}
COHORT_DISEASES = {"brain": "Alzheimer disease", "lung": "lung adenocarcinoma"}
STAGES = ("aged", "middle aged", "adult", "young adult")
N_SILENT_GENES = 3  # the last genes of the pack are never expressed


def make_cohort_store(path, kg, *, donors_per_group: int = 5, seed: int = 0):
    """Write a store over ``kg``: per tissue 2 datasets, ``donors_per_group`` donors per disease state, 4
    cell types (one junk label) x 4..12 meta-cells per donor, plus a rare cell type (3 meta-cells). Donor
    ids repeat across datasets on purpose. Returns ``(TOSGStore, X)`` with X the exact counts."""
    from celltosg.store import create_store

    rng = np.random.default_rng(seed)
    base = rng.gamma(1.0, 2.0, kg.n_rna)
    base[-N_SILENT_GENES:] = 0.0
    rows, blocks = [], []
    for tissue, cell_types in COHORT_CELL_TYPES.items():
        for disease in ("normal", COHORT_DISEASES[tissue]):
            for d in range(donors_per_group):
                dataset = f"{tissue}_ds{d % 2}"
                donor = f"D{d}" if disease == "normal" else f"D{d + donors_per_group}"
                sex = ("female", "male")[(d + (disease != "normal")) % 2]
                stage = STAGES[d % len(STAGES)]
                types = cell_types + (("rare cell",) if d == 0 and disease == "normal" else ())
                for c, cell_type in enumerate(types):
                    n = 3 if cell_type == "rare cell" else int(rng.integers(4, 13))
                    rate = base.copy()
                    rate[c * 8:(c + 1) * 8] *= 4.0
                    if disease != "normal":
                        rate[30:34] *= 3.0
                    size = rng.integers(5, 30, n)
                    blocks.append(rng.poisson(size[:, None] * rate[None, :] / 5.0))
                    for m in range(n):
                        rows.append({
                            "cell_id": f"{dataset}:{donor}:{disease}:{cell_type}:{m}", "n_raw_cells": int(size[m]),
                            "dataset_id": dataset, "donor_id": donor, "source": "CellxGene",
                            "tissue": tissue, "tissue_general": tissue, "disease": disease,
                            "disease_raw": disease, "cell_type": cell_type, "cell_type_raw": cell_type,
                            "sex": sex, "sex_normalized": sex, "development_stage_category": stage,
                            "development_stage_numeric_age": 40.0 + d, "assay": "10x 3' v3",
                            "suspension_type": "cell",
                        })
    X = np.concatenate(blocks).astype(np.int64)
    store = create_store(path, X, pd.DataFrame(rows), kg, shard_size=300, chunk_rows=32)
    return store, X


@pytest.fixture(scope="session")
def cohort_store_data(tiny_kg_dir, tmp_path_factory):
    """(store directory, exact counts X) of the loader's simulated store."""
    store, X = make_cohort_store(tmp_path_factory.mktemp("loader") / "cohort", KnowledgeGraph.load(tiny_kg_dir))
    return store.root, X


@pytest.fixture()
def cohort_store(cohort_store_data):
    """A freshly opened simulated cohort store."""
    from celltosg.store import TOSGStore

    return TOSGStore.open(cohort_store_data[0])
