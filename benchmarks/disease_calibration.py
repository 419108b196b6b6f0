"""Calibration of the simulated disease: logistic regression's donor-split accuracy against effect size.

For each disease effect (log2 fold-change scale) and each gene placement (``module``: a connected PPI
module; ``random``: as many genes scattered over the graph with the same expression distribution), this
script simulates one blood cohort with one disease (the same simulation seed throughout), builds a TOSG
store of meta-cells, and runs the benchmark's logistic regression (same grid, same loader cohort, split by
donor) on ``--seeds`` split seeds. It prints the meta-cell test accuracy (mean ± sd over seeds) and the
donor-level accuracy and AUROC, and writes ``calibration_<placements>.csv`` (one row per effect, placement
and seed).
A constant guess scores about 0.5; the default effect of ``celltosg simulate`` is chosen so that the
``module`` row lies in 0.65-0.85.

    PYTHONPATH=src .venv/bin/python benchmarks/disease_calibration.py [--effects 0.5,1,1.5,2,3] \
        [--seeds 5] [--donors 24] [--cells 9600] [--genes 2000] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

DISEASE = "type 2 diabetes mellitus"


def cohort_store(workdir: Path, *, effect: float, placement: str, n_cells: int, n_donors: int, n_genes: int,
                 sim_seed: int, **simulate_options) -> Path:
    """Simulate one disease cohort and build its store (meta-cells of 10 cells); returns the store path."""
    from celltosg.build import build_store, simulate

    name = f"effect{effect:g}_{placement}_seed{sim_seed}"
    store, sim = workdir / f"store_{name}", workdir / f"sim_{name}"
    if not sim.is_dir():  # an earlier run's simulation is reused; build_store resumes an unfinished store
        simulate(sim, n_cells=n_cells, n_donors=n_donors, diseases=[DISEASE], n_genes=n_genes, seed=sim_seed,
                 disease_effect=effect, disease_genes=placement, **simulate_options)
    # a deliberate 2000-gene panel: below the build's coverage floor, so the mapping is forced
    build_store(sorted(sim.glob("*.h5ad")), store, metacell_size=10, seed=0, force_mapping=True)
    return store


def logreg_rows(store: Path, seeds: list[int], *, correction: str | None = None):
    """The benchmark's logistic-regression rows (one per seed) on the store's donor-split disease cohort."""
    from celltosg.evaluation import run_benchmark
    from celltosg.evaluation._models import model_specs
    from celltosg.evaluation._tasks import store_splits

    make = store_splits(store, {"disease": DISEASE}, task="disease", split_by="donor", correction_method=correction)
    return run_benchmark(make, model_specs(["logreg"]), seeds=seeds, task="disease")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--effects", default="0.5,1,1.5,2,3", help="Comma-separated disease effects.")
    parser.add_argument("--placements", default="module,random")
    parser.add_argument("--seeds", type=int, default=5, help="Split seeds 0..N-1 per cohort.")
    parser.add_argument("--sim-seed", type=int, default=0, help="Simulation seed (the same for every cohort).")
    parser.add_argument("--donors", type=int, default=24)
    parser.add_argument("--cells", type=int, default=9600)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("disease_calibration"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / f"calibration_{args.placements.replace(',', '_')}.csv"
    frames = []
    for effect in [float(e) for e in args.effects.split(",")]:
        for placement in args.placements.split(","):
            start = time.perf_counter()
            store = cohort_store(args.out, effect=effect, placement=placement, n_cells=args.cells,
                                 n_donors=args.donors, n_genes=args.genes, sim_seed=args.sim_seed)
            rows = logreg_rows(store, list(range(args.seeds))).assign(effect=effect, placement=placement)
            frames.append(rows)
            acc = rows["accuracy"]
            extra = "".join(f", {k} {rows[k].mean():.3f} ± {rows[k].std(ddof=1):.3f}"
                            for k in ("donor_accuracy", "donor_auroc") if k in rows)
            print(f"effect {effect:g} {placement:6s}: logreg accuracy {acc.mean():.3f} ± {acc.std(ddof=1):.3f} "
                  f"(seeds {', '.join(f'{a:.3f}' for a in acc)}){extra}  [{time.perf_counter() - start:.0f} s]",
                  flush=True)
            pd.concat(frames).to_csv(csv, index=False)
    table = pd.concat(frames)
    summary = table.groupby(["effect", "placement"], sort=False)["accuracy"].agg(["mean", "std"]).round(3)
    print(summary.to_string())
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
