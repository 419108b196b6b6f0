"""Recovery of planted disease genes: CellTOSG-FM explanations vs differential expression.

The simulator plants a disease effect on a connected PPI module (``ground_truth.json``). This script
simulates a blood cohort with one disease, builds a TOSG store, loads the disease-vs-normal cohort
(donor-wise split), fine-tunes CellTOSG-FM, explains the disease class against ``normal`` (contrast
mode: attention with the "received" and the reference's node rule, and gradient x input) and ranks
genes by it. The baseline ranks the same cells' genes with scanpy ``rank_genes_groups`` (Wilcoxon,
disease vs normal, by |score|). For K = the number of planted
genes measured in the cohort and for the genes of the top-k core subgraph, it prints precision and
recall of the planted genes and the ratio ours / DE.

    .venv/bin/python benchmarks/explain_recovery.py [--quick] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np


def gene_ranking(kg, node_ranking: np.ndarray) -> list[str]:
    """Gene symbols in order of their best node (RNA or protein) under ``node_ranking`` (NaN last)."""
    order = np.lexsort((np.arange(len(node_ranking)), -np.nan_to_num(node_ranking, nan=-np.inf)))
    symbols = kg.nodes["symbol"].astype(str).to_numpy()[order]
    return list(dict.fromkeys(s for s in symbols if s))


def precision_recall(ranked: list[str], truth: set[str], k: int) -> tuple[float, float]:
    hits = len(set(ranked[:k]) & truth)
    return hits / max(k, 1), hits / max(len(truth), 1)


def de_ranking(X: np.ndarray, labels: np.ndarray, genes: list[str], disease: int, normal: int) -> list[str]:
    """Genes by |Wilcoxon score| of scanpy rank_genes_groups, disease vs normal."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    keep = np.isin(labels, [disease, normal])
    group = pd.Categorical(np.where(labels[keep] == disease, "disease", "normal"))
    adata = ad.AnnData(X[keep], obs=pd.DataFrame({"group": group}, index=np.arange(keep.sum()).astype(str)),
                       var=pd.DataFrame(index=np.arange(len(genes)).astype(str)))  # column numbers: unique
    sc.tl.rank_genes_groups(adata, "group", groups=["disease"], reference="normal", method="wilcoxon",
                            n_genes=adata.n_vars)
    names = np.asarray(adata.uns["rank_genes_groups"]["names"]["disease"]).astype(str)
    scores = np.asarray(adata.uns["rank_genes_groups"]["scores"]["disease"], dtype=float)
    order = np.argsort(-np.abs(scores), kind="stable")
    return list(dict.fromkeys(genes[int(column)] for column in names[order]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller cohort and fewer epochs (under ~2 min).")
    parser.add_argument("--out", type=Path, default=Path("bench_output/explain_recovery"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=120, help="Seed nodes of the core subgraph.")
    parser.add_argument("--epochs", type=int, default=None, help="Fine-tuning epochs (default 5 quick, 20 full).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Fine-tuning learning rate.")
    parser.add_argument("--max-cells", type=int, default=None,
                        help="Cells per class explained (default 200 quick, 2000 full).")
    args = parser.parse_args()
    os.environ.setdefault("CELLTOSG_QUIET", "1")
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    from celltosg.build import build_store, simulate
    from celltosg.explain import explain
    from celltosg.loader import load_cohort
    from celltosg.model import FMConfig
    from celltosg.train import build_model, finetune, load_checkpoint

    n_cells, n_donors, n_genes, epochs, hidden, max_cells = (
        (3200, 16, 500, 5, 16, 200) if args.quick else (12000, 24, 4000, 20, 32, 2000))
    epochs = args.epochs or epochs
    max_cells = args.max_cells or max_cells
    disease = "asthma"
    out = args.out
    timings = {}
    t0 = time.perf_counter()
    sim = simulate(out / "sim", n_cells=n_cells, n_donors=n_donors, tissues=["blood"], diseases=[disease],
                   seed=args.seed, n_genes=n_genes, overwrite=True)
    truth_all = set(json.loads(sim.ground_truth_path.read_text())[disease])
    timings["simulate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store_dir = out / "store"
    if store_dir.exists():
        import shutil

        shutil.rmtree(store_dir)
    build_store(sim.files, store_dir, metacell_size=5, seed=args.seed)
    timings["build"] = time.perf_counter() - t0
    cohort = load_cohort(store_dir, {"tissue": "blood"}, task="disease", balance=False, seed=args.seed)
    kg = cohort.kg
    measured = set(kg.rna_symbols.astype(str))
    truth = truth_all & measured
    t0 = time.perf_counter()
    config = FMConfig(hidden=hidden, heads=4, layers=2, n_classes=0)
    result = finetune(cohort, task="disease", config=config, out_dir=out / "finetune", epochs=epochs,
                      batch_size=32, lr=args.lr, seed=args.seed, resume=False)
    timings["finetune"] = time.perf_counter() - t0
    model, _, _ = build_model(load_checkpoint(result.checkpoint))
    mapping = cohort.label_mapping
    X, labels = cohort.X(None), cohort.labels(None)
    rng = np.random.default_rng(args.seed)
    chosen = np.concatenate([np.sort(rng.permutation(np.flatnonzero(labels == mapping[name]))[:max_cells])
                             for name in (disease, "normal")])
    X, labels = X[chosen], labels[chosen]  # the same cells for the explanation and the DE baseline
    k = len(truth)
    rows = []
    for method, rule in (("attention", "received"), ("attention", "reference"), ("gradient_x_input", "received")):
        name = f"celltosg {method}" + (f" ({rule})" if method == "attention" else "")
        t0 = time.perf_counter()
        res = explain(model, X, labels, mapping, kg, class_label=disease, reference_label="normal",
                      top_k=args.top_k, out_dir=out / f"explain_{method}_{rule}", method=method, rule=rule,
                      seed=args.seed, max_cells=max_cells, batch_size=64)
        timings[f"explain {name}"] = time.perf_counter() - t0
        ranked = gene_ranking(kg, res.importance.ranking())
        sub_genes = set(res.subgraph.genes)
        rows.append((name, ranked, len(sub_genes), len(sub_genes & truth) / max(len(truth), 1)))
    t0 = time.perf_counter()
    de = de_ranking(X, labels, list(kg.rna_symbols.astype(str)), mapping[disease], mapping["normal"])
    timings["rank_genes_groups"] = time.perf_counter() - t0

    test = result.metrics["test"]
    print(f"cohort: {len(cohort.obs)} meta-cells ({len(X)} explained), {len(measured)} genes; planted "
          f"{len(truth_all)} genes, {k} measured; classifier test accuracy {test['accuracy']:.3f}, "
          f"macro-F1 {test['macro_f1']:.3f} (near 0.5: the model has not learned the disease, and the "
          "attention scores then mostly relay input differences)")
    print(f"{'ranking':36s} {'P@K':>6s} {'R@K':>6s}   {'subgraph genes':>14s} {'R(subgraph)':>11s} {'R(DE, same n)':>13s}")
    de_p, de_r = precision_recall(de, truth, k)
    summary = {"K": k, "de": {"precision": de_p, "recall": de_r}}
    for name, ranked, n_sub, sub_recall in rows:
        p, r = precision_recall(ranked, truth, k)
        _, de_sub = precision_recall(de, truth, n_sub)
        print(f"{name:36s} {p:6.3f} {r:6.3f}   {n_sub:14d} {sub_recall:11.3f} {de_sub:13.3f}")
        summary[name] = {"precision": p, "recall": r, "subgraph_genes": n_sub, "subgraph_recall": sub_recall,
                         "de_recall_same_n": de_sub, "ratio_recall_vs_de": r / de_r if de_r else float("nan")}
    print(f"{'scanpy wilcoxon (|score|)':36s} {de_p:6.3f} {de_r:6.3f}")
    for name, *_ in rows:
        ratio = summary[name]["ratio_recall_vs_de"]
        print(f"ratio recall@K {name} / DE: {ratio:.2f}")
    print("seconds: " + ", ".join(f"{key} {value:.1f}" for key, value in timings.items()))
    record = {"summary": summary, "seconds": timings, "test_metrics": {k: test[k] for k in ("accuracy", "macro_f1")}}
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
