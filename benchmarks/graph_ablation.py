"""Does the knowledge graph earn its cost? CellTOSG-FM with the real graph vs a rewired graph vs none.

Data: the PBMC cells and seeded splits of ``pbmc_accuracy.py``. Every variant is the recipe's model
(``celltosg.recipe.RECIPE``) fine-tuned from scratch (no pretraining, so that only the graph differs):

- ``real graph``: the human pack's subgraph of the measured genes;
- ``rewired graph``: PPI and ligand -> receptor edges rewired by degree-preserving double-edge swaps
  (seeded; nodes, text and sequence features unchanged);
- ``no message passing``: no graph layers (fusion and readout only);
- ``graph path alone`` and ``graph path alone, rewired``: the model without the skip path, on the real
  and on the rewired graph.

Logistic regression on the same split is the reference. For the default model (real graph) it also
reports how much of the logits come from each path: the spread (sd over classes) of the graph path's
and the skip path's logits, and the share of test cells whose prediction equals the skip path's alone.

    .venv/bin/python benchmarks/graph_ablation.py            # 5 seeds, 2 processes
    .venv/bin/python benchmarks/graph_ablation.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {  # name -> (FMConfig overrides, rewired graph)
    "real graph": ({}, False),
    "rewired graph": ({}, True),
    "no message passing": ({"message_passing": False}, False),
    "graph path alone": ({"skip": False}, False),
    "graph path alone, rewired": ({"skip": False}, True),
}


def run_seed(seed: int, epochs: int, patience: int, out: str, variants: tuple[str, ...]) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from celltosg.evaluation import logit_paths, rewire_knowledge_graph
    from celltosg.model import graph_inputs
    from celltosg.recipe import RECIPE
    from celltosg.train import build_graph_inputs, build_model, finetune, load_checkpoint
    from pbmc_accuracy import logistic_regression, pbmc_cohort

    cohort = pbmc_cohort(seed)
    real = build_graph_inputs(cohort.kg, seq_dim=RECIPE.config().seq_dim)
    rewired = graph_inputs(rewire_knowledge_graph(cohort.kg, seed=seed), real.text_emb, real.seq_feat, real.seq_mask)
    rows = [{"seed": seed, "variant": "logistic regression", **logistic_regression(cohort, seed), "seconds": 0.0}]
    for name in variants:
        changes, use_rewired = VARIANTS[name]
        start = time.perf_counter()
        result = finetune(cohort, task="cell_type", config=RECIPE.config(**changes),
                          graph=rewired if use_rewired else real,
                          out_dir=Path(out) / f"seed{seed}" / name.replace(" ", "_").replace(",", ""),
                          epochs=epochs, batch_size=RECIPE.batch_size, lr=RECIPE.lr, patience=patience, seed=seed,
                          resume=False)
        row = {"seed": seed, "variant": name, "accuracy": result.metrics["test"]["accuracy"],
               "macro_f1": result.metrics["test"]["macro_f1"], "seconds": time.perf_counter() - start,
               "s_per_epoch": (time.perf_counter() - start) / result.metrics["epochs_run"]}
        if name == "real graph":
            model = build_model(load_checkpoint(result.checkpoint), path=result.checkpoint)[0]
            row.update(logit_paths(model, cohort.X("test")))
        rows.append(row)
    print(f"seed {seed} done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (max; default: the recipe)")
    parser.add_argument("--patience", type=int, default=None, help="default: the recipe")
    parser.add_argument("--jobs", type=int, default=2, help="processes (one torch thread each)")
    parser.add_argument("--quick", action="store_true", help="one seed, 3 epochs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from celltosg.recipe import RECIPE

    epochs, patience = args.epochs or RECIPE.epochs, args.patience or RECIPE.patience
    if args.quick:
        args.seeds, epochs, patience = args.seeds[:1], 3, 3
    out = args.out or Path(tempfile.mkdtemp(prefix="graph_ablation_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"settings: {vars(args)}; model: {RECIPE.model}; load average {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    jobs = [(seed, epochs, patience, str(out), tuple(args.variants)) for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = [row for part in pool.map(run_seed, *zip(*jobs, strict=True)) for row in part]
    names = ["logistic regression", *args.variants]
    print(f"\ntest scores, mean ± sd over seeds {args.seeds}\n")
    print("| variant | accuracy | macro-F1 | macro-F1 per seed | s/epoch |\n|---|---|---|---|---|")
    for name in names:
        part = [r for r in rows if r["variant"] == name]
        acc, f1 = np.array([r["accuracy"] for r in part]), np.array([r["macro_f1"] for r in part])
        sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0  # noqa: E731
        per_epoch = f"{np.mean([r['s_per_epoch'] for r in part]):.2f}" if "s_per_epoch" in part[0] else ""
        print(f"| {name} | {acc.mean():.3f} ± {sd(acc):.3f} | {f1.mean():.3f} ± {sd(f1):.3f} | "
              f"{' '.join(f'{v:.3f}' for v in f1)} | {per_epoch} |")
    default = [r for r in rows if r["variant"] == "real graph" and "graph_spread" in r]
    if default:
        mean = {k: float(np.mean([r[k] for r in default])) for k in ("graph_spread", "skip_spread", "agree_skip")}
        print(f"\ndefault model (real graph): logit spread graph path {mean['graph_spread']:.2f}, skip path "
              f"{mean['skip_spread']:.2f}; prediction equals the skip path's alone on {100 * mean['agree_skip']:.1f}% "
              "of test cells")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wall time {time.perf_counter() - start:.0f} s with {args.jobs} processes; load average "
          f"{os.getloadavg()[0]:.1f}; outputs in {out}")


if __name__ == "__main__":
    main()
