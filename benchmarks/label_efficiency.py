"""Does pretraining pay when labels are scarce? CellTOSG-FM pretrained vs from scratch vs flat baselines.

Data: the PBMC cells of ``pbmc_accuracy.py`` (same seeded 70/10/20 split by cell). For every seed, the
encoder is pretrained once (edge masking, ``celltosg.recipe.RECIPE``) on ALL training cells without
their labels; then, for each budget of 5, 10, 20 and 50 labelled cells per class (seeded draw from the
training split; a class with fewer cells gives all it has), four models are fitted on the labelled
cells only and scored on the same validation (selection) and test cells as before: the pretrained
CellTOSG-FM, the same model from scratch, logistic regression and CellTypist.

Prints one row per (budget, model) with the mean and sd of test macro-F1 over seeds, the per-seed
values, and writes a PNG of macro-F1 against labels per class. Seeds run in ``--jobs`` processes of
one torch thread each.

    .venv/bin/python benchmarks/label_efficiency.py --out label_efficiency     # 5 seeds, 2 processes
    .venv/bin/python benchmarks/label_efficiency.py --quick                    # smoke run
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

BUDGETS = (5, 10, 20, 50)
MODELS = ("CellTOSG-FM pretrained", "CellTOSG-FM scratch", "logistic regression", "CellTypist")


def labelled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of up to ``per_class`` cells of every class, drawn with ``seed``."""
    rng = np.random.default_rng([seed, per_class])
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


def _macro_f1(y, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", zero_division=0))


def run_seed(seed: int, budgets: tuple[int, ...], epochs: int, pretrain_epochs: int, patience: int,
             out: str) -> list[dict]:
    """All budgets and models of one seed; rows of (seed, budget, model, macro_f1, accuracy, seconds)."""
    import torch

    torch.set_num_threads(1)
    from celltosg.baselines import CellTypistClassifier, LogisticRegressionClassifier
    from celltosg.recipe import RECIPE
    from celltosg.train import InMemoryCohort, build_graph_inputs, finetune, pretrain
    from pbmc_accuracy import pbmc_cohort

    work = Path(out) / f"seed{seed}"
    cohort = pbmc_cohort(seed)
    config = RECIPE.config()
    graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    start = time.perf_counter()
    pre = pretrain(cohort, config=config, graph=graph, epochs=pretrain_epochs, batch_size=RECIPE.pretrain_batch_size,
                   lr=RECIPE.pretrain_lr, mask_fraction=RECIPE.mask_fraction, seed=seed, out=work / "pretrained.ckpt")
    pretrain_seconds = time.perf_counter() - start
    X_train, y_train = cohort.X("train"), cohort.labels("train")
    names = np.array(sorted(cohort.label_mapping, key=cohort.label_mapping.get))
    y_test = cohort.labels("test")
    rows = []
    for per_class in budgets:
        keep = labelled_subset(y_train, per_class, seed)
        parts = [(X_train[keep], "train", y_train[keep]), (cohort.X("val"), "val", cohort.labels("val")),
                 (cohort.X("test"), "test", y_test)]
        small = InMemoryCohort(np.concatenate([p[0] for p in parts]),
                               np.repeat([p[1] for p in parts], [len(p[0]) for p in parts]), cohort.kg,
                               labels=names[np.concatenate([p[2] for p in parts])])
        for name, pretrained in (("CellTOSG-FM pretrained", pre.checkpoint), ("CellTOSG-FM scratch", None)):
            start = time.perf_counter()
            result = finetune(small, task="cell_type", config=config, graph=None if pretrained else graph,
                              pretrained=pretrained, out_dir=work / f"{per_class}_{name.split()[-1]}",
                              epochs=epochs, batch_size=RECIPE.batch_size, lr=RECIPE.lr, patience=patience,
                              seed=seed, resume=False)
            test = result.metrics["test"]
            rows.append({"seed": seed, "per_class": per_class, "n_labelled": len(keep), "model": name,
                         "macro_f1": test["macro_f1"], "accuracy": test["accuracy"],
                         "seconds": time.perf_counter() - start})
        n_classes = len(names)
        for name, clf in (("logistic regression", LogisticRegressionClassifier(n_classes=n_classes, seed=seed)),
                          ("CellTypist", CellTypistClassifier(n_classes=n_classes, genes=cohort.kg.rna_symbols,
                                                              seed=seed))):
            start = time.perf_counter()
            clf.fit(X_train[keep], y_train[keep], cohort.X("val"), cohort.labels("val"))
            pred = clf.predict(cohort.X("test"))
            rows.append({"seed": seed, "per_class": per_class, "n_labelled": len(keep), "model": name,
                         "macro_f1": _macro_f1(y_test, pred), "accuracy": float((pred == y_test).mean()),
                         "seconds": time.perf_counter() - start})
    for row in rows:
        row["pretrain_seconds"] = pretrain_seconds
    print(f"seed {seed} done ({pretrain_seconds:.0f} s pretraining)", flush=True)
    return rows


def table(rows: list[dict], budgets, seeds) -> str:
    lines = [f"| labels per class | {' | '.join(MODELS)} |", "|---|" + "---|" * len(MODELS)]
    for per_class in budgets:
        cells = []
        for model in MODELS:
            values = [r["macro_f1"] for r in rows if r["per_class"] == per_class and r["model"] == model]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}")
        lines.append(f"| {per_class} | {' | '.join(cells)} |")
    return "\n".join(lines)


def plot(rows: list[dict], budgets, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for model in MODELS:
        means = [np.mean([r["macro_f1"] for r in rows if r["per_class"] == b and r["model"] == model]) for b in budgets]
        sds = [np.std([r["macro_f1"] for r in rows if r["per_class"] == b and r["model"] == model]) for b in budgets]
        ax.errorbar(budgets, means, yerr=sds, marker="o", capsize=3, label=model)
    ax.set_xscale("log")
    ax.minorticks_off()  # the log axis would label 6, 30, 40 as 6x10^0, 3x10^1, 4x10^1
    ax.set_xticks(list(budgets), [str(b) for b in budgets])
    ax.set_xlabel("labelled cells per class")
    ax.set_ylabel("test macro-F1 (mean ± sd over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs (max)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: the recipe")
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2, help="processes (one torch thread each)")
    parser.add_argument("--quick", action="store_true", help="one seed, budgets 5 and 50, 3 epochs")
    parser.add_argument("--out", type=Path, default=None, help="results.json, label_efficiency.png, checkpoints")
    args = parser.parse_args()
    from celltosg.recipe import RECIPE

    pretrain_epochs = args.pretrain_epochs or RECIPE.pretrain_epochs
    if args.quick:
        args.seeds, args.budgets, args.epochs, pretrain_epochs, args.patience = args.seeds[:1], [5, 50], 3, 1, 3
    out = args.out or Path(tempfile.mkdtemp(prefix="label_efficiency_"))
    out.mkdir(parents=True, exist_ok=True)
    budgets = tuple(args.budgets)
    print(f"settings: {vars(args)}; model: {RECIPE.model}; load average {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    jobs = [(seed, budgets, args.epochs, pretrain_epochs, args.patience, str(out)) for seed in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            rows = [row for part in pool.map(run_seed, *zip(*jobs, strict=True)) for row in part]
    else:
        rows = [row for job in jobs for row in run_seed(*job)]
    wall = time.perf_counter() - start
    print(f"\ntest macro-F1, mean ± sd over seeds {args.seeds}\n")
    print(table(rows, budgets, args.seeds))
    print("\nper seed (macro-F1):")
    for per_class in budgets:
        for model in MODELS:
            values = [f"{r['macro_f1']:.3f}" for r in rows if r["per_class"] == per_class and r["model"] == model]
            print(f"  {per_class:>3} per class  {model:<24} {' '.join(values)}")
    for per_class in budgets:
        means = {m: np.mean([r["macro_f1"] for r in rows if r["per_class"] == per_class and r["model"] == m])
                 for m in MODELS}
        print(f"{per_class:>3} per class: pretrained - logreg {means[MODELS[0]] - means[MODELS[2]]:+.3f}, "
              f"pretrained - scratch {means[MODELS[0]] - means[MODELS[1]]:+.3f}")
    plot(rows, budgets, out / "label_efficiency.png")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wall time {wall:.0f} s with {args.jobs} processes; load average {os.getloadavg()[0]:.1f}; "
          f"outputs in {out}")


if __name__ == "__main__":
    main()
