"""Fine-tuning streamed from the store at atlas scale: peak memory at 50k and 200k meta-cells, and training
throughput of the streamed path against the in-memory path on the same rows.

Stores: simulated meta-cells over the full human pack (all 21,846 RNA nodes as columns; ~800 expressed
genes per meta-cell, NB-like counts; donors, tissues and 8 cell types), written once under
``--work/stores/<n>`` and reused by later runs. Generation is block by block, so writing needs little memory.

Memory (one fresh process per store size): the whole store is loaded as a cell-type cohort (split by donor)
and fine-tuned with ``stream=True`` through the training engine: the cohort's measured genes, the per-gene
standardisation statistics in one streaming pass over train, the skip-path warm start on a bounded sample,
then ``--steps`` training steps with batches from the loader's streaming datamodule (background chunk
decoding, shuffle buffer of ``--buffer`` rows). Peak RSS is the process's ``ru_maxrss``. A streamed epoch
over 120k training rows would take hours of model time on this machine, so the steps are capped; the
memory of the data path does not grow with the number of steps (the buffer is reused).

Throughput (one fresh process per path): a cohort of ``--compare`` meta-cells (small enough for memory),
the same model, seed and batch size; rows per second of ``--steps`` training steps after a warm-up step
(the streamed path's timed steps include its buffer refills), in-memory = ``split -> cohort.X`` tensors.

Model: the claim is about the data path, so the cheapest configuration trains (message passing off,
hidden 4, rank-1 per-node readout, no text / sequence features beyond 8 random dimensions); its forward
over the 40,822-node pack graph still runs every step.

Run: PYTHONPATH=src python benchmarks/train_stream.py --work /tmp/celltosg_train_stream [--sizes 50000 200000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GENES_PER_CELL = 800
SHARD_ROWS = 10_000
CELL_TYPES = ("T cell", "B cell", "macrophage", "epithelial cell", "fibroblast", "endothelial cell", "neuron",
              "astrocyte")
TISSUES = ("brain", "lung", "blood", "liver", "kidney")


class SimulatedCounts:
    """(n, n_genes) sparse counts generated shard by shard on slicing (the store writer slices shards)."""

    ndim = 2

    def __init__(self, n: int, n_genes: int, seed: int = 0):
        self.shape = (n, n_genes)
        self.seed = seed

    def __getitem__(self, rows: slice):
        import scipy.sparse as sp

        start, stop, _ = rows.indices(self.shape[0])
        n = stop - start
        rng = np.random.default_rng([self.seed, start])
        cols = np.sort(rng.integers(0, self.shape[1], (n, GENES_PER_CELL), dtype=np.int32), axis=1)
        values = (rng.poisson(rng.gamma(0.8, 6.0, (n, GENES_PER_CELL))) + 1).astype(np.float32)
        X = sp.csr_matrix((values.ravel(), cols.ravel(), np.arange(0, n * GENES_PER_CELL + 1, GENES_PER_CELL)),
                          shape=(n, self.shape[1]))
        X.sum_duplicates()
        return X


def _obs(n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_donors = max(50, n // 100)
    donor = rng.integers(0, n_donors, n)
    return pd.DataFrame({
        "cell_id": [f"mc{i}" for i in range(n)], "n_raw_cells": rng.integers(5, 60, n),
        "dataset_id": [f"ds{d % 40}" for d in donor], "donor_id": [f"donor{d}" for d in donor],
        "source": "CellxGene", "tissue": np.array(TISSUES)[donor % len(TISSUES)],
        "tissue_general": np.array(TISSUES)[donor % len(TISSUES)], "disease": "normal",
        "cell_type": np.array(CELL_TYPES)[rng.integers(0, len(CELL_TYPES), n)],
        "sex_normalized": np.where(donor % 3 == 0, "female", "male"),
        "development_stage_category": "adult", "assay": "10x 3' v3",
    })


def simulated_store(work: Path, n: int) -> Path:
    """The store of ``n`` simulated meta-cells under ``work/stores/<n>`` (written on first use)."""
    path = work / "stores" / str(n)
    manifest = path / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("complete"):
        return path
    from celltosg.kg import KnowledgeGraph
    from celltosg.store import create_store

    kg = KnowledgeGraph.load("human")
    start = time.perf_counter()
    create_store(path, SimulatedCounts(n, kg.n_rna), _obs(n), kg, shard_size=SHARD_ROWS, overwrite=True)
    print(f"wrote a {n:,}-meta-cell store over {kg.n_rna:,} genes in {time.perf_counter() - start:.0f} s: {path}",
          flush=True)
    return path


def _setup(store_path: Path, rows: int | None, stream: bool, buffer: int, batch: int):
    """(prepared fine-tuning setup, per-epoch batches) of the store's cell-type cohort."""
    import torch

    from celltosg.loader import load_cohort
    from celltosg.model import FMConfig, graph_inputs
    from celltosg.train._finetune import prepare

    torch.set_num_threads(1)
    cohort = load_cohort(store_path, {}, task="cell_type", sample_size=rows, seed=0)
    kg = cohort.kg
    rng = np.random.default_rng(0)
    graph = graph_inputs(kg, rng.normal(size=(kg.n_nodes, 8)), rng.normal(size=(kg.n_nodes, 8)),
                         np.arange(kg.n_nodes) >= kg.n_rna)
    config = FMConfig(hidden=4, heads=1, layers=1, message_passing=False, readout="per_node", readout_rank=1,
                      readout_dim=8, text_dim=8, seq_dim=8, use_seq=False, dropout=0.0)
    setup = prepare(cohort, task="cell_type", config=config, graph=graph, stream=stream, buffer_size=buffer,
                    skip_init="logreg", seed=0)
    return cohort, setup, setup.data.train_batches(batch)


def _train(setup, batches, steps: int, clock: list[float], rows: list[int]) -> None:
    """At most ``steps`` engine steps of one epoch (no validation); appends the time at the start of each
    step and at the end to ``clock``, and each batch's rows to ``rows``."""
    from celltosg.train import ClassifierPlan, FitSettings, fit

    def timed(epoch, generator):
        for batch in itertools.islice(batches(epoch, generator), steps):
            clock.append(time.perf_counter())
            rows.append(len(batch[0]))
            yield batch
        clock.append(time.perf_counter())

    fit(ClassifierPlan(setup.model, setup.weights, None), timed, FitSettings(epochs=1, description="bench"))


def memory_worker(store_path: Path, steps: int, buffer: int, batch: int) -> dict:
    start = time.perf_counter()
    cohort, setup, batches = _setup(store_path, None, True, buffer, batch)
    setup_s = time.perf_counter() - start
    clock: list[float] = []
    _train(setup, batches, steps, clock, [])
    return {"n_cells": int(cohort.store.n_cells), "n_cohort": len(cohort.obs),
            "n_train": int(len(setup.data.labels("train"))), "n_genes": int(len(cohort.genes)),
            "setup_s": setup_s, "train_s": clock[-1] - clock[0], "steps": len(clock) - 1,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def throughput_worker(store_path: Path, rows: int, steps: int, buffer: int, batch: int, stream: bool) -> dict:
    cohort, setup, batches = _setup(store_path, rows, stream, buffer, batch)
    clock: list[float] = []
    rows: list[int] = []
    _train(setup, batches, steps + 1, clock, rows)
    timed = np.diff(clock)[1:]  # after the warm-up step (and, streamed, the first buffer fill)
    return {"rows_per_s": sum(rows[1:]) / timed.sum(), "steps": len(timed),
            "n_train": int(len(setup.data.labels("train"))),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _spawn(args: list[str]) -> dict:
    env = {**os.environ, "CELLTOSG_QUIET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT ")).removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="cache of the simulated stores")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--compare", type=int, default=6_000, help="meta-cells of the throughput cohort")
    parser.add_argument("--steps", type=int, default=300, help="training steps timed / run per measurement")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--buffer", type=int, default=1024, help="rows of the streaming shuffle buffer")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, store = args.worker[0], Path(args.worker[1])
        if kind == "memory":
            result = memory_worker(store, args.steps, args.buffer, args.batch)
        else:
            result = throughput_worker(store, args.compare, args.steps, args.buffer, args.batch, kind == "stream")
        print("RESULT " + json.dumps(result), flush=True)
        return
    common = ["--work", str(args.work), "--steps", str(args.steps), "--batch", str(args.batch), "--buffer", str(args.buffer),
              "--compare", str(args.compare)]
    stores = {n: simulated_store(args.work, n) for n in args.sizes}
    print(f"load average before: {os.getloadavg()}", flush=True)
    for n, path in stores.items():
        m = _spawn([*common, "--worker", "memory", str(path)])
        print(f"{n:,} meta-cells: streamed fine-tuning of {m['n_cohort']:,} cohort rows ({m['n_train']:,} train, "
              f"{m['n_genes']:,} genes): setup {m['setup_s']:.0f} s (genes, statistics pass, warm start), "
              f"{m['steps']} steps in {m['train_s']:.0f} s; peak RSS {m['peak_rss_gb']:.2f} GB", flush=True)
    small = stores[min(stores)]
    memory = _spawn([*common, "--worker", "inmemory", str(small)])
    streamed = _spawn([*common, "--worker", "stream", str(small)])
    print(f"throughput on a {args.compare:,}-meta-cell cohort ({memory['n_train']:,} train rows), batch {args.batch}, "
          f"{memory['steps']} / {streamed['steps']} timed steps: in-memory {memory['rows_per_s']:,.0f} rows/s (peak RSS "
          f"{memory['peak_rss_gb']:.2f} GB) | streamed {streamed['rows_per_s']:,.0f} rows/s (peak RSS "
          f"{streamed['peak_rss_gb']:.2f} GB) | ratio (streamed / in-memory) "
          f"{streamed['rows_per_s'] / memory['rows_per_s']:.2f}x", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
