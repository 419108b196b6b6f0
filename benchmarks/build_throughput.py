"""Build throughput, peak memory and bytes on disk of `celltosg build` on simulated atlases.

For each size it simulates h5ad files (human pack, blood + lung, normal + asthma donors), then builds a
store with the ``fast`` meta-cell method in a fresh process and reports:

- cells per second of the build (simulation excluded);
- the same per CPU-second (build process and its workers), which a busy machine disturbs less;
- peak resident memory of the build process (of its largest Dask worker when ``--workers`` > 1), the
  part above its memory after imports and loading the pack, and the ratio of that part to the largest input's in-memory counts
  (the build holds one file per worker, so this ratio stays flat as the atlas grows);
- bytes on disk per meta-cell and per meta-cell x RNA node, against the reference release's dense
  float32 row of 412,039 transcript columns (1,648,156 bytes): the ratio ours / reference.

    .venv/bin/python benchmarks/build_throughput.py [--quick] [--sizes 100000 1000000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REFERENCE_COLUMNS = 412_039
REFERENCE_ROW_BYTES = REFERENCE_COLUMNS * 4

_CHILD = r"""
import json, re, resource, sys, time
args = json.loads(sys.argv[1])
from celltosg.build import build_store
from celltosg.kg import KnowledgeGraph
def status_kb(key):  # ru_maxrss survives exec on Linux (it would report the parent's peak); /proc does not
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))
kg = KnowledgeGraph.load("human")
kg.map_genes(["ACTB"])
base = status_kb("VmRSS")
def cpu():
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
cpu0 = cpu()
start = time.perf_counter()
store = build_store(args["files"], args["out"], kg=kg, metacell_method="fast", metacell_size=args["size"],
                    workers=args["workers"])
seconds = time.perf_counter() - start
cpu_seconds = cpu() - cpu0
info = store.info()
peak = max(status_kb("VmHWM"), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "base_kb": base, "peak_kb": peak, "info": info}))
"""


def input_bytes(path: Path) -> int:
    """In-memory bytes of a file's sparse counts (data + indices + indptr)."""
    import h5py

    with h5py.File(path, "r") as handle:
        X = handle["X"]
        return sum(X[k].size * X[k].dtype.itemsize for k in ("data", "indices", "indptr"))


def run(n_cells: int, out: Path, *, workers: int, metacell_size: int, cells_per_file: int, seed: int) -> dict:
    from celltosg.build import simulate

    sim_dir = out / f"sim_{n_cells}_{cells_per_file}_{seed}"
    store_dir = out / f"store_{n_cells}"
    shutil.rmtree(store_dir, ignore_errors=True)
    start = time.perf_counter()
    files = sorted(sim_dir.glob("*.h5ad"))  # the simulation is deterministic: reuse an earlier one
    if not files:
        files = simulate(sim_dir, n_cells=n_cells, n_donors=max(4, n_cells // cells_per_file),
                         tissues=("blood", "lung"), diseases=("asthma",), seed=seed, cells_per_file=cells_per_file,
                         overwrite=True).files
    simulate_s = time.perf_counter() - start
    args = {"files": [str(f) for f in files], "out": str(store_dir), "size": metacell_size, "workers": workers}
    env = dict(os.environ, CELLTOSG_QUIET="1")
    result = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True,
                            env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build of {n_cells} cells failed:\n{result.stderr[-3000:]}")
    child = json.loads(result.stdout.strip().splitlines()[-1])
    info = child["info"]
    largest = max(input_bytes(f) for f in files)
    per_cell = info["expression_bytes"] / info["n_cells"]
    return {
        "n_cells": n_cells, "n_files": len(files), "simulate_s": round(simulate_s, 1),
        "build_s": round(child["seconds"], 1), "cells_per_s": round(n_cells / child["seconds"], 1),
        "build_cpu_s": round(child["cpu_seconds"], 1), "cells_per_cpu_s": round(n_cells / child["cpu_seconds"], 1),
        "peak_rss_mb": round(child["peak_kb"] / 1024, 1), "rss_after_imports_mb": round(child["base_kb"] / 1024, 1),
        "largest_input_mb": round(largest / 2**20, 1),
        "build_increment_mb": round((child["peak_kb"] - child["base_kb"]) / 1024, 1),
        "increment_over_largest_input": round((child["peak_kb"] - child["base_kb"]) * 1024 / largest, 2),
        "n_metacells": info["n_cells"], "n_rna_nodes": info["n_nodes"],
        "expression_bytes": info["expression_bytes"], "bytes_per_metacell": round(per_cell, 1),
        "bytes_per_metacell_node": round(info["bytes_per_value"], 4),
        "reference_bytes_per_metacell": REFERENCE_ROW_BYTES,
        "ratio_ours_over_reference": round(per_cell / REFERENCE_ROW_BYTES, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="One small atlas (5,000 cells), under ~2 minutes.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="Atlas sizes (cells).")
    parser.add_argument("--workers", type=int, default=1, help="Dask workers of the build (1 = serial).")
    parser.add_argument("--metacell-size", type=int, default=50, help="Cells per meta-cell.")
    parser.add_argument("--cells-per-file", type=int, default=25_000, help="Cells per simulated h5ad file.")
    parser.add_argument("--out", type=Path, default=Path("bench_output/build_throughput"), help="Work directory.")
    parser.add_argument("--seed", type=int, default=0, help="Simulation seed.")
    args = parser.parse_args()
    sizes = [5_000] if args.quick else args.sizes
    per_file = min(args.cells_per_file, 2_500) if args.quick else args.cells_per_file
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        row = run(n, args.out, workers=args.workers, metacell_size=args.metacell_size, cells_per_file=per_file,
                  seed=args.seed)
        rows.append(row)
        print(json.dumps(row), flush=True)
    for row in rows:
        print(f"{row['n_cells']:>9,} cells, {row['n_files']} files: {row['cells_per_s']:,.0f} cells/s wall, "
              f"{row['cells_per_cpu_s']:,.0f} per CPU-s; peak {row['peak_rss_mb']:,.0f} MB, of which "
              f"{row['build_increment_mb']:,.0f} MB above the imports = {row['increment_over_largest_input']:.1f}x "
              f"the largest input's {row['largest_input_mb']:,.0f} MB; {row['bytes_per_metacell']:,.0f} B per meta-cell = "
              f"{row['bytes_per_metacell_node']:.3f} B per meta-cell x node; ours / reference dense float32 row "
              f"({REFERENCE_ROW_BYTES:,} B) = {row['ratio_ours_over_reference']:.4f}")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
