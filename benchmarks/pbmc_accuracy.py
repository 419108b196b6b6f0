"""CellTOSG-FM on the embedded real PBMC cells: test accuracy and macro-F1 with and without pretraining.

Data: scanpy's pbmc68k_reduced (700 cells, ``.raw`` log-normalised values, 10 ``bulk_labels`` cell types)
mapped onto the human pack (duplicates summed), single-cell TOSGs over the pack subgraph of the measured
genes, a seeded split by cell stratified by cell type (70/10/20). Baseline in the same run: logistic
regression on the same values and split. Selection and early stopping use the validation split only.

    .venv/bin/python benchmarks/pbmc_accuracy.py            # full run
    .venv/bin/python benchmarks/pbmc_accuracy.py --quick    # smoke run, under ~2 minutes
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs: a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40, help="fine-tuning epochs (max)")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3, help="fine-tuning learning rate")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--out", type=Path, default=None, help="keep checkpoints and metrics here")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.pretrain_epochs, args.patience = 3, 1, 3

    import torch

    from celltosg.model import FMConfig
    from celltosg.train import build_graph_inputs, finetune, pretrain

    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="pbmc_accuracy_"))
    cohort = pbmc_cohort(args.seed)
    config = FMConfig(hidden=args.hidden, heads=2, layers=args.layers, readout_dim=32, dropout=0.1)
    start = time.perf_counter()
    graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    print(f"graph inputs (text + sequence features): {time.perf_counter() - start:.1f} s")
    common = dict(task="cell_type", epochs=args.epochs, batch_size=32, lr=args.lr, patience=args.patience,
                  seed=args.seed, resume=False)
    rows = {}
    start = time.perf_counter()
    rows["logistic regression (baseline)"] = (logistic_regression(cohort, args.seed), time.perf_counter() - start)
    start = time.perf_counter()
    scratch = finetune(cohort, config=config, graph=graph, out_dir=out / "scratch", **common)
    rows["CellTOSG-FM, no pretraining"] = (scratch.metrics["test"], time.perf_counter() - start)
    start = time.perf_counter()
    pre = pretrain(cohort, config=config, graph=graph, epochs=args.pretrain_epochs, batch_size=16, lr=3e-3,
                   mask_fraction=0.05, seed=args.seed, out=out / "pretrained.ckpt")
    pre_time = time.perf_counter() - start
    print(f"pretraining: held-out-cell edge AUC {pre.metrics['auc']:.4f}, AP {pre.metrics['ap']:.4f} "
          f"({pre.metrics['masked_pairs_per_step']} masked pairs per step, {pre_time:.0f} s)")
    start = time.perf_counter()
    tuned = finetune(cohort, pretrained=pre.checkpoint, out_dir=out / "pretrained", **common)
    rows["CellTOSG-FM, pretrained"] = (tuned.metrics["test"], time.perf_counter() - start + pre_time)
    baseline = rows["logistic regression (baseline)"][0]
    print(f"\nsettings: {vars(args)}")
    print(f"{'model':<34} {'test acc':>9} {'macro-F1':>9} {'F1 / baseline':>14} {'time s':>8}")
    for name, (m, seconds) in rows.items():
        print(f"{name:<34} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f} "
              f"{m['macro_f1'] / baseline['macro_f1']:>14.3f} {seconds:>8.0f}")
    summary = {name: {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": s}
               for name, (m, s) in rows.items()}
    summary["pretraining_edge"] = {"auc": pre.metrics["auc"], "ap": pre.metrics["ap"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"outputs in {out}")


if __name__ == "__main__":
    main()
