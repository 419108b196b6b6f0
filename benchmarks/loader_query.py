"""Query latency of a 3-condition filter on a simulated store (>= 200,000 meta-cells), against pandas.

Also home of :func:`bench_store`, the simulated store the other loader benchmarks reuse.
Run: .venv/bin/python benchmarks/loader_query.py [--quick] [--store DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TISSUES = {"brain": "Alzheimer disease", "lung": "lung adenocarcinoma", "blood": "leukemia",
           "liver": "hepatitis", "kidney": "chronic kidney disease"}
CELL_TYPES = ("T cell", "B cell", "macrophage", "epithelial cell", "fibroblast", "endothelial cell", "neuron",
              "astrocyte")
STAGES = ("aged", "middle aged", "adult", "young adult", "child")
GENES_PER_CELL = 800


def _obs(n: int, rng) -> pd.DataFrame:
    n_donors = max(50, n // 100)
    donor = rng.integers(0, n_donors, n)
    tissue = np.array(list(TISSUES))[donor % len(TISSUES)]
    diseased = (donor // len(TISSUES)) % 2 == 1
    disease = np.where(diseased, [TISSUES[t] for t in tissue], "normal")
    return pd.DataFrame({
        "cell_id": [f"mc{i}" for i in range(n)], "n_raw_cells": rng.integers(5, 60, n),
        "dataset_id": [f"ds{d % 40}" for d in donor], "donor_id": [f"donor{d}" for d in donor],
        "source": "CellxGene", "tissue": tissue, "tissue_general": tissue, "disease": disease,
        "cell_type": np.array(CELL_TYPES)[rng.integers(0, len(CELL_TYPES), n)],
        "sex_normalized": np.where(donor % 3 == 0, "female", "male"),
        "development_stage_category": np.array(STAGES)[donor % len(STAGES)],
        "assay": "10x 3' v3",
    })


def _counts(n: int, n_genes: int, rng):
    """Sparse NB-like counts (n, n_genes): ~GENES_PER_CELL expressed genes per meta-cell."""
    import scipy.sparse as sp

    cols = rng.integers(0, n_genes, (n, GENES_PER_CELL))
    cols.sort(axis=1)
    values = rng.poisson(rng.gamma(0.8, 6.0, (n, GENES_PER_CELL))) + 1
    X = sp.csr_matrix((values.ravel().astype(np.float32), cols.ravel(),
                       np.arange(0, n * GENES_PER_CELL + 1, GENES_PER_CELL)), shape=(n, n_genes))
    X.sum_duplicates()
    return X


def bench_store(path: Path, n_cells: int, *, seed: int = 0):
    """Open (or first write) a simulated store of ``n_cells`` meta-cells over the human pack at ``path``."""
    from celltosg.kg import KnowledgeGraph
    from celltosg.store import TOSGStore, create_store

    path = Path(path)
    if (path / "manifest.json").is_file():
        manifest = json.loads((path / "manifest.json").read_text())
        if manifest.get("complete") and manifest.get("n_cells") == n_cells:
            return TOSGStore.open(path)
    kg = KnowledgeGraph.load("human")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    store = create_store(path, _counts(n_cells, kg.n_rna, rng), _obs(n_cells, rng), kg, overwrite=True)
    print(f"wrote a {n_cells:,}-meta-cell store in {time.perf_counter() - start:.0f} s at {path}")
    return store


def default_store_dir(quick: bool) -> Path:
    return Path(tempfile.gettempdir()) / ("celltosg_bench_store_quick" if quick else "celltosg_bench_store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 meta-cells instead of 200,000")
    parser.add_argument("--store", type=Path, default=None, help="store directory (created when missing)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    store = bench_store(args.store or default_store_dir(args.quick), n)
    from celltosg.loader import query

    conditions = {"tissue_general": "Brain", "disease": ["alzheimer disease", "normal"], "sex": "female"}
    ours = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        rows = query(store, conditions)
        ours.append(time.perf_counter() - t)
    base = []
    for _ in range(args.repeats):  # the reference's way: read the metadata table, mask column by column
        t = time.perf_counter()
        frame = pd.read_parquet(store.root / "obs.parquet")
        mask = np.ones(len(frame), dtype=bool)
        for column, value in (("tissue_general", ["brain"]), ("disease", ["alzheimer disease", "normal"]),
                              ("sex_normalized", ["female"])):
            mask &= frame[column].str.lower().isin(value).to_numpy()
        expected = frame[mask]
        base.append(time.perf_counter() - t)
    assert len(expected) == len(rows)
    o, b = statistics.median(ours), statistics.median(base)
    print(f"store: {store.n_cells:,} meta-cells; 3-condition filter matched {len(rows):,}")
    print(f"celltosg.loader.query (DuckDB, with validation): median {o * 1e3:.1f} ms")
    print(f"pandas read_parquet + masks (reference way):      median {b * 1e3:.1f} ms")
    print(f"ratio (pandas / ours): {b / o:.2f}x")


if __name__ == "__main__":
    main()
