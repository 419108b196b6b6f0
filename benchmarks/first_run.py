"""The first-run chain of a new user, timed step by step from an empty cache directory.

``celltosg simulate --cells 3000 --donors 12`` -> ``build --metacell-size 5`` -> ``pretrain`` ->
``finetune --task cell_type --pretrained``, every step with default options in its own process, with
``CELLTOSG_CACHE`` and ``XDG_CACHE_HOME`` pointing at a new empty directory (so no text embedding is
cached). Besides each step's wall and CPU time (CPU seconds are what a busy machine disturbs least) it
reports how long ``pretrain`` took from its start to the log line ``pretraining starts`` (the target:
under 30 s on the full human pack), and the total against the 10-minute target.

    .venv/bin/python benchmarks/first_run.py [--out DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOTAL_TARGET_S = 600
START_TARGET_S = 30
_CLI = "from celltosg.cli import main; main()"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_step(args: list[str], env: dict, log_path: Path, marker: str | None = None) -> tuple[float, float, float | None]:
    """Run ``celltosg ARGS``; return its wall seconds, its CPU seconds and the wall seconds until ``marker``
    appeared in its output (None if it never did)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    seen = None
    with subprocess.Popen([sys.executable, "-c", _CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env) as process, open(log_path, "w") as log:
        for line in process.stdout:
            log.write(f"[{time.perf_counter() - start:7.1f}s] {line}")
            log.flush()
            if marker is not None and seen is None and marker in line:
                seen = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"`celltosg {' '.join(args)}` failed; see {log_path}")
    return time.perf_counter() - start, _children_cpu() - cpu, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_output/first_run"), help="Work directory (emptied).")
    parser.add_argument("--threads", type=int, default=1, help="Torch / BLAS threads of every step.")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    cache = args.out / "cache"
    cache.mkdir(parents=True)
    threads = str(args.threads)
    env = dict(os.environ, CELLTOSG_CACHE=str(cache), XDG_CACHE_HOME=str(cache), CELLTOSG_QUIET="1",
               COLUMNS="200", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    sim, store = args.out / "sim", args.out / "store"
    steps = [
        ("simulate", ["simulate", "--out", str(sim), "--cells", "3000", "--donors", "12"], None),
        ("build", ["build", "SIM_FILES", "--out", str(store), "--metacell-size", "5"], None),
        ("pretrain", ["pretrain", str(store), "--out", str(args.out / "pretrained.ckpt")], "pretraining starts"),
        ("finetune", ["finetune", str(store), "--task", "cell_type", "--out", str(args.out / "finetuned"),
                      "--pretrained", str(args.out / "pretrained.ckpt")], None),
    ]
    rows, cpu_total = [], 0.0
    for name, command, marker in steps:
        if "SIM_FILES" in command:
            at = command.index("SIM_FILES")
            command[at:at + 1] = [str(p) for p in sorted(sim.glob("*.h5ad"))]
        seconds, cpu, marked = run_step(command, env, args.out / f"{name}.log", marker)
        rows.append((name, seconds, marked))
        cpu_total += cpu
        print(f"{name:<9} {seconds:8.1f} s wall {cpu:8.1f} s CPU"
              + (f"   ('{marker}' after {marked:.1f} s)" if marker else ""), flush=True)
    total = sum(seconds for _, seconds, _ in rows)
    started = rows[2][2]
    load = os.getloadavg()
    print(f"{'total':<9} {total:8.1f} s wall {cpu_total:8.1f} s CPU   target {TOTAL_TARGET_S} s wall: "
          f"{'met' if total < TOTAL_TARGET_S else 'MISSED'}")
    print(f"pretrain started training after {started:.1f} s" if started is not None else
          "pretrain never logged 'pretraining starts'",
          f"(target {START_TARGET_S} s: {'met' if started is not None and started < START_TARGET_S else 'MISSED'})")
    print(f"cpu cores {os.cpu_count()}, threads per step {threads}, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; logs in {args.out}")


if __name__ == "__main__":
    main()
