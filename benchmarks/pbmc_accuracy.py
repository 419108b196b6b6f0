"""CellTOSG-FM on the embedded real PBMC cells against logistic regression, per seed and on average.

Data: scanpy's pbmc68k_reduced (700 cells, ``.raw`` log-normalised values, 10 ``bulk_labels`` cell types)
mapped onto the human pack (duplicates summed), single-cell TOSGs over the pack subgraph of the measured
genes, a seeded split by cell stratified by cell type (70/10/20), seeds 0-4. Baseline in the same run:
logistic regression on the same values and split. Rows: the recipe's model (``celltosg.train.RECIPE``)
pretrained, its graph path alone (no skip path), and the model without pretraining. Selection and early
stopping use the validation split only. Columns beyond the scores: training accuracy, the spread (std
over classes) of the graph path's and the skip path's logits, the share of test cells whose prediction
equals the skip path's alone (``=skip``), and seconds per fine-tuning epoch.

    .venv/bin/python benchmarks/pbmc_accuracy.py            # full run (5 seeds)
    .venv/bin/python benchmarks/pbmc_accuracy.py --quick    # smoke run, one seed
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def pbmc_cohort(seed: int):
    """InMemoryCohort of the PBMC cells over the human pack's subgraph of their genes."""
    import scipy.sparse as sp

    from celltosg.datasets import pbmc68k
    from celltosg.kg import KnowledgeGraph
    from celltosg.loader import split_by_cell
    from celltosg.train import InMemoryCohort

    adata = pbmc68k()
    kg = KnowledgeGraph.load("human")
    mapping = kg.map_genes(adata.var_names)
    genes = np.unique(mapping.rna_index[mapping.rna_index >= 0])
    sub = kg.subgraph(genes)
    column = np.searchsorted(genes, mapping.rna_index)
    mapped = np.flatnonzero(mapping.rna_index >= 0)
    select = sp.csr_matrix((np.ones(len(mapped)), (mapped, column[mapped])), shape=(adata.n_vars, len(genes)))
    X = np.asarray((sp.csr_matrix(adata.X) @ select).todense(), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "split by cell is optimistic": one donor, known
        split = split_by_cell(adata.obs, strata="cell_type", seed=seed)
    print(f"PBMC: {adata.n_obs} cells, {adata.n_vars} genes, {mapping.rate:.1%} mapped -> {sub.n_rna} RNA + "
          f"{sub.n_protein} protein nodes, {len(sub.edges)} edges; split "
          + ", ".join(f"{s}={int((split == s).sum())}" for s in ("train", "val", "test")))
    return InMemoryCohort(X, split, sub, labels=adata.obs["cell_type"].astype(str).to_numpy())


def logistic_regression(cohort, seed: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from celltosg.baselines import LogisticRegressionClassifier

    clf = LogisticRegressionClassifier(n_classes=len(cohort.label_mapping), seed=seed)
    clf.fit(cohort.X("train"), cohort.labels("train"), cohort.X("val"), cohort.labels("val"))
    pred = clf.predict(cohort.X("test"))
    y = cohort.labels("test")
    return {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(f1_score(y, pred, average="macro"))}


def fm_row(result, cohort) -> dict:
    """Test metrics of a fine-tuning result plus the logit-path diagnostics of its model."""
    from celltosg.evaluation import logit_paths
    from celltosg.train import build_model, load_checkpoint

    model = build_model(load_checkpoint(result.checkpoint), path=result.checkpoint)[0]
    return {**result.metrics["test"], "train_accuracy": train_accuracy(model, cohort),
            **logit_paths(model, cohort.X("test"))}


def train_accuracy(model, cohort) -> float:
    import torch

    with torch.no_grad():
        pred = model(torch.from_numpy(cohort.X("train")))["logits"].argmax(1).numpy()
    return float((pred == cohort.labels("train")).mean())


VARIANTS = {  # row name -> (FMConfig overrides, pretrained)
    "CellTOSG-FM (pretrained)": ({}, True),
    "graph path alone (no skip, pretrained)": ({"skip": False}, True),
    "CellTOSG-FM, no pretraining": ({}, False),
}


def run_seed(seed: int, args, out: Path) -> dict[str, dict]:
    """Logistic regression and the FM variants on one seeded split; returns {row name: metrics}."""
    from celltosg.recipe import RECIPE
    from celltosg.train import build_graph_inputs, finetune, pretrain

    cohort = pbmc_cohort(seed)
    config = RECIPE.config()
    graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    common = dict(task="cell_type", epochs=args.epochs, batch_size=RECIPE.batch_size, lr=RECIPE.lr,
                  patience=args.patience, seed=seed, resume=False)
    rows = {}
    start = time.perf_counter()
    rows["logistic regression (baseline)"] = {**logistic_regression(cohort, seed),
                                              "seconds": time.perf_counter() - start}
    start = time.perf_counter()
    pre = pretrain(cohort, config=config, graph=graph, epochs=args.pretrain_epochs,
                   batch_size=RECIPE.pretrain_batch_size, lr=RECIPE.pretrain_lr, mask_fraction=RECIPE.mask_fraction,
                   seed=seed, out=out / f"seed{seed}" / "pretrained.ckpt")
    pre_time = time.perf_counter() - start
    print(f"seed {seed} pretraining: held-out-cell edge AUC {pre.metrics['auc']:.4f}, AP {pre.metrics['ap']:.4f} "
          f"({pre_time:.0f} s)", flush=True)
    for name, (changes, pretrained) in VARIANTS.items():
        if name in args.skip_rows:
            continue
        start = time.perf_counter()
        tuned = finetune(cohort, config=RECIPE.config(**changes), graph=None if pretrained else graph,
                         pretrained=pre.checkpoint if pretrained else None,
                         out_dir=out / f"seed{seed}" / name.split(" (")[0].replace(" ", "_").replace(",", ""),
                         **common)
        seconds = time.perf_counter() - start + (pre_time if pretrained else 0.0)
        epochs = tuned.metrics["epochs_run"]
        rows[name] = {**fm_row(tuned, cohort), "seconds": seconds, "s_per_epoch": (time.perf_counter() - start) / epochs}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, one seed: a smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (max; default: the recipe)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: the recipe")
    parser.add_argument("--patience", type=int, default=None, help="default: the recipe")
    parser.add_argument("--skip-rows", nargs="*", default=[], choices=list(VARIANTS), help="FM rows to leave out")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--out", type=Path, default=None, help="keep checkpoints and metrics here")
    args = parser.parse_args()

    import torch

    from celltosg.recipe import RECIPE

    args.epochs = args.epochs or RECIPE.epochs
    args.pretrain_epochs = args.pretrain_epochs or RECIPE.pretrain_epochs
    args.patience = args.patience or RECIPE.patience
    if args.quick:
        args.epochs, args.pretrain_epochs, args.patience, args.seeds = 3, 1, 3, args.seeds[:1]
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="pbmc_accuracy_"))
    print(f"settings: {vars(args)}; model: {RECIPE.model}; lr {RECIPE.lr}, batch size {RECIPE.batch_size}, "
          f"skip init {RECIPE.skip_init}; load average {os.getloadavg()[0]:.1f}", flush=True)
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_seed(seed, args, out)
        print_rows(f"seed {seed}", per_seed[seed])
    names = list(per_seed[args.seeds[0]])
    mean = {name: {key: float(np.mean([per_seed[s][name][key] for s in args.seeds]))
                   for key in ("accuracy", "macro_f1", "seconds")} for name in names}
    print_rows(f"mean over seeds {args.seeds}", mean)
    base = mean["logistic regression (baseline)"]["macro_f1"]
    for name in names[1:]:
        print(f"{name}: mean macro-F1 {mean[name]['macro_f1']:.4f} - logistic regression {base:.4f} = "
              f"{mean[name]['macro_f1'] - base:+.4f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    (out / "summary.json").write_text(json.dumps({"per_seed": per_seed, "mean": mean}, indent=2, default=float))
    print(f"outputs in {out}")


def print_rows(title: str, rows: dict[str, dict]) -> None:
    base = rows["logistic regression (baseline)"]["macro_f1"]
    print(f"\n{title}")
    print(f"{'model':<40} {'test acc':>8} {'macro-F1':>8} {'F1/base':>7} {'train acc':>9} {'graph spr':>9} "
          f"{'skip spr':>8} {'=skip':>6} {'s/epoch':>7} {'time s':>7}")
    for name, m in rows.items():
        extra = (f"{m['train_accuracy']:>9.3f} {m['graph_spread']:>9.2f} {m['skip_spread']:>8.2f} {m['agree_skip']:>6.3f} "
                 f"{m['s_per_epoch']:>7.2f}" if "graph_spread" in m else f"{'':>9} {'':>9} {'':>8} {'':>6} {'':>7}")
        print(f"{name:<40} {m['accuracy']:>8.4f} {m['macro_f1']:>8.4f} {m['macro_f1'] / base:>7.3f} {extra} "
              f"{m['seconds']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
