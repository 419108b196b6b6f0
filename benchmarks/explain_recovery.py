"""Explanations checked against independent truth: planted disease modules, and PBMC marker genes.

Part 1, simulated modules. The simulator plants a disease effect on a connected PPI module
(``ground_truth.json``). The script simulates a blood cohort with one disease, builds a TOSG store, loads
the disease-vs-normal cohort (donor-wise split), fine-tunes CellTOSG-FM and explains the disease class with
every method (attention; gradient x input and integrated gradients against the cohort's mean profile and
against zeros), each class-contrastive. Genes are ranked by their best node. The baseline ranks the same
cells' genes with scanpy ``rank_genes_groups`` (Wilcoxon, disease vs normal, by |score|). Printed: P@20 and
recall@120 of the planted genes that the cohort measures, and the ratio to Wilcoxon.

Part 2, PBMC marker genes. The demo's chain (the 700 PBMC cells embedded in scanpy, split by cell,
pretraining then fine-tuning with the demo's settings), then for CD14+ Monocyte, CD19+ B and CD56+ NK: the
overlap of each method's top 20 genes with the top 50 of scanpy's Wilcoxon ranking of that class against
the rest (same model inputs), and whether the core subgraph enriches an immune-related GO term (immune,
leukocyte, myeloid, inflammatory, antigen) at q < 0.05.

Both parts also explain an MLP (``celltosg.baselines.MLPClassifier``) trained on the same inputs and split,
through the same gradient code: how the attribution methods do on a classifier that has learned the
classes, apart from how well CellTOSG-FM has.

    PYTHONPATH=src .venv/bin/python benchmarks/explain_recovery.py [--quick] [--part all|simulated|pbmc]
        [--out DIR] [--seed N] [--threads 1] [--pbmc-demo DEMO_OUT]

Tables are printed and written to ``OUT/tables.md``; everything to ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PBMC_CLASSES = ("CD14+ Monocyte", "CD19+ B", "CD56+ NK")
IMMUNE = re.compile(r"immun|leukocyte|myeloid|inflammat|antigen", re.IGNORECASE)
# (label, method, baseline, node rule)
METHODS = (
    ("attention (received)", "attention", None, "received"),
    ("gradient_x_input (mean)", "gradient_x_input", "mean", None),
    ("gradient_x_input (zeros)", "gradient_x_input", "zeros", None),
    ("integrated_gradients (mean)", "integrated_gradients", "mean", None),
    ("integrated_gradients (zeros)", "integrated_gradients", "zeros", None),
)


def gene_ranking(kg, node_ranking: np.ndarray) -> list[str]:
    """Gene symbols in order of their best node (RNA or protein) under ``node_ranking`` (NaN last)."""
    order = np.lexsort((np.arange(len(node_ranking)), -np.nan_to_num(node_ranking, nan=-np.inf)))
    symbols = kg.nodes["symbol"].astype(str).to_numpy()[order]
    return list(dict.fromkeys(s for s in symbols if s))


def wilcoxon_ranking(X: np.ndarray, labels: np.ndarray, genes: list[str], group: int, reference: int | None,
                     *, by_magnitude: bool) -> list[str]:
    """Genes by scanpy rank_genes_groups Wilcoxon score of ``group`` against ``reference`` (None = the rest)."""
    import anndata as ad
    import scanpy as sc

    keep = np.ones(len(labels), bool) if reference is None else np.isin(labels, [group, reference])
    names = np.where(labels[keep] == group, "group", "rest")
    adata = ad.AnnData(X[keep], obs=pd.DataFrame({"g": pd.Categorical(names)}, index=np.arange(keep.sum()).astype(str)),
                       var=pd.DataFrame(index=np.arange(len(genes)).astype(str)))  # column numbers: unique
    sc.tl.rank_genes_groups(adata, "g", groups=["group"], reference="rest", method="wilcoxon", n_genes=adata.n_vars)
    ranked = np.asarray(adata.uns["rank_genes_groups"]["names"]["group"]).astype(str)
    scores = np.asarray(adata.uns["rank_genes_groups"]["scores"]["group"], dtype=float)
    order = np.argsort(-np.abs(scores) if by_magnitude else -scores, kind="stable")
    return list(dict.fromkeys(genes[int(column)] for column in ranked[order]))


class ExpressionClassifier:
    """An MLP trained on the same model inputs, seen through CellTOSG-FM's public interface.

    ``forward(x)["logits"]`` and ``graph`` (the FM's, for the RNA -> protein node map) are all the gradient
    methods use, so the same attribution code explains it: a check of the methods on a classifier that has
    learned the classes, independent of the FM's readout.
    """

    @staticmethod
    def fit(cohort, graph, seed: int):
        import torch

        from celltosg.baselines import MLPClassifier

        mlp = MLPClassifier(n_classes=len(cohort.label_mapping), seed=seed, device=torch.device("cpu"))
        mlp.fit(cohort.X("train"), cohort.labels("train"), cohort.X("val"), cohort.labels("val"))
        accuracy = float((mlp.predict_proba(cohort.X("test")).argmax(1) == cohort.labels("test")).mean())

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.mlp = mlp._module.cpu().eval()
                self.graph = graph

            def forward(self, x):
                return {"logits": self.mlp(x)}

        return Wrapped(), accuracy


def run_methods(model, X, labels, mapping, kg, class_label, out: Path, *, contrast_label, top_k, max_cells, seed,
                methods=METHODS):
    """{label: (ExplainResult, seconds)} for every method in ``methods``."""
    from celltosg.explain import explain

    results = {}
    for label, method, baseline, rule in methods:
        start = time.perf_counter()
        slug = re.sub(r"\W+", "_", label).strip("_")
        res = explain(model, X, labels, mapping, kg, class_label=class_label, contrast_label=contrast_label,
                      top_k=top_k, out_dir=out / slug, method=method, baseline=baseline or "mean",
                      rule=rule or "received", seed=seed, max_cells=max_cells, batch_size=32)
        results[label] = (res, time.perf_counter() - start)
    return results


def simulated(args, out: Path) -> tuple[pd.DataFrame, dict]:
    """Part 1: P@20 and recall@120 of the planted module per method and for Wilcoxon."""
    from celltosg.build import build_store, simulate
    from celltosg.loader import load_cohort
    from celltosg.model import FMConfig
    from celltosg.train import build_model, finetune, load_checkpoint

    n_cells, n_donors, n_genes, epochs, hidden, max_cells = (
        (3200, 16, 500, 5, 16, 200) if args.quick else (12000, 24, 4000, 20, 32, 500))
    epochs = args.epochs or epochs
    max_cells = args.max_cells or max_cells
    disease = "asthma"
    sim = simulate(out / "sim", n_cells=n_cells, n_donors=n_donors, tissues=["blood"], diseases=[disease],
                   seed=args.seed, n_genes=n_genes, overwrite=True)
    truth_all = set(json.loads(sim.ground_truth_path.read_text())[disease])
    store_dir = out / "store"
    if store_dir.exists():
        import shutil

        shutil.rmtree(store_dir)
    build_store(sim.files, store_dir, metacell_size=5, seed=args.seed, force_mapping=True)  # a gene panel
    cohort = load_cohort(store_dir, {"tissue": "blood"}, task="disease", balance=False, seed=args.seed)
    kg = cohort.kg
    truth = truth_all & set(kg.rna_symbols.astype(str))
    start = time.perf_counter()
    result = finetune(cohort, task="disease", config=FMConfig(hidden=hidden, heads=4, layers=2, n_classes=0),
                      out_dir=out / "finetune", epochs=epochs, batch_size=32, lr=args.lr, seed=args.seed, resume=False)
    seconds = {"finetune": time.perf_counter() - start}
    model, _, _ = build_model(load_checkpoint(result.checkpoint))
    mapping = cohort.label_mapping
    X, labels = cohort.X(None), cohort.labels(None)
    rng = np.random.default_rng(args.seed)
    chosen = np.concatenate([np.sort(rng.permutation(np.flatnonzero(labels == mapping[name]))[:max_cells])
                             for name in (disease, "normal")])
    X, labels = X[chosen], labels[chosen]  # the same cells for the explanations and the Wilcoxon baseline
    runs = run_methods(model, X, labels, mapping, kg, disease, out / "explain", contrast_label=None,
                       top_k=args.top_k, max_cells=max_cells, seed=args.seed)
    mlp, mlp_accuracy = ExpressionClassifier.fit(cohort, model.graph, args.seed)
    runs.update({f"MLP: {label}": run for label, run in run_methods(
        mlp, X, labels, mapping, kg, disease, out / "explain_mlp", contrast_label=None, top_k=args.top_k,
        max_cells=max_cells, seed=args.seed, methods=METHODS[1:]).items()})
    rankings = {label: gene_ranking(kg, res.importance.ranking()) for label, (res, _) in runs.items()}
    seconds.update({label: sec for label, (_, sec) in runs.items()})
    start = time.perf_counter()
    rankings["scanpy Wilcoxon (abs score)"] = wilcoxon_ranking(X, labels, list(kg.rna_symbols.astype(str)),
                                                             mapping[disease], mapping["normal"], by_magnitude=True)
    seconds["scanpy Wilcoxon (abs score)"] = time.perf_counter() - start
    rows = []
    for label, ranked in rankings.items():
        rows.append({"ranking": label, "P@20": len(set(ranked[:20]) & truth) / 20,
                     "recall@120": len(set(ranked[:120]) & truth) / max(len(truth), 1),
                     "seconds": seconds[label]})
    table = pd.DataFrame(rows)
    wilcoxon = table.iloc[-1]
    table["P@20 / Wilcoxon"] = table["P@20"] / wilcoxon["P@20"] if wilcoxon["P@20"] else np.nan
    test = result.metrics["test"]
    info = {"cells": int(len(cohort.obs)), "explained_cells_per_class": max_cells, "genes": int(kg.n_rna),
            "planted": len(truth_all), "planted_measured": len(truth), "test_accuracy": test["accuracy"],
            "test_macro_f1": test["macro_f1"], "finetune_seconds": seconds["finetune"], "mlp_test_accuracy": mlp_accuracy}
    return table, info


def pbmc_model(args, out: Path):
    """The demo's PBMC store, cohort and fine-tuned model (same settings as ``celltosg demo``), trained here or
    read from the output of a finished ``celltosg demo --out DIR`` (``--pbmc-demo DIR``)."""
    from celltosg.build import build_store
    from celltosg.demo import DemoSettings, _write_input
    from celltosg.loader import load_cohort
    from celltosg.store import TOSGStore
    from celltosg.train import build_model, finetune, load_checkpoint, pretrain

    settings = DemoSettings.for_mode(args.quick)
    if args.pbmc_demo is not None:
        cohort = load_cohort(TOSGStore.open(args.pbmc_demo / "store"), {}, task="cell_type", split_by="cell",
                             seed=args.seed)
        payload = load_checkpoint(args.pbmc_demo / "finetune" / "model.ckpt")
        model, _, _ = build_model(payload)
        X, y = cohort.X("test"), cohort.labels("test")
        import torch

        with torch.no_grad():
            pred = model(torch.as_tensor(X))["logits"].argmax(1).numpy()
        from sklearn.metrics import f1_score

        return cohort, model, {"accuracy": float((pred == y).mean()),
                               "macro_f1": float(f1_score(y, pred, average="macro"))}, settings
    h5ad = _write_input(out)
    store_dir = out / "store"
    if not store_dir.exists():
        build_store([h5ad], store_dir, lognorm=True, metacell_size=1, min_genes=50, min_cells=1, seed=args.seed,
                    force_mapping=True)
    cohort = load_cohort(TOSGStore.open(store_dir), {}, task="cell_type", split_by="cell", seed=args.seed)
    ckpt = out / "pretrain.ckpt"
    pretrain(cohort, config=settings.model_config(), epochs=settings.pretrain_epochs, lr=3e-3, seed=args.seed,
             out=ckpt)
    tuned = finetune(cohort, task="cell_type", pretrained=ckpt, out_dir=out / "finetune",
                     config=settings.model_config(), epochs=settings.finetune_epochs, patience=settings.patience,
                     lr=3e-3, seed=args.seed, resume=False)
    model, _, _ = build_model(load_checkpoint(tuned.checkpoint))
    return cohort, model, tuned.metrics["test"], settings


def pbmc(args, out: Path) -> tuple[pd.DataFrame, dict]:
    """Part 2: overlap of each method's top 20 with the Wilcoxon top 50, per class; immune GO terms."""
    from celltosg.explain import DEFAULT_METHOD

    start = time.perf_counter()
    cohort, model, test, settings = pbmc_model(args, out)
    train_seconds = time.perf_counter() - start
    kg, mapping = cohort.kg, cohort.label_mapping
    X, labels = cohort.X(None), cohort.labels(None)
    genes = list(kg.rna_symbols.astype(str))
    mlp, mlp_accuracy = ExpressionClassifier.fit(cohort, model.graph, args.seed)
    rows = []
    for class_label in PBMC_CLASSES:
        wilcoxon = wilcoxon_ranking(X, labels, genes, mapping[class_label], None, by_magnitude=False)[:50]
        where = out / "explain" / class_label.replace(" ", "_")
        common = dict(contrast_label=None, top_k=settings.top_k, max_cells=None, seed=args.seed)
        runs = run_methods(model, X, labels, mapping, kg, class_label, where, **common,
                           methods=[m for m in METHODS if m[2] != "zeros"])  # zeros: see the MLP and part 1
        runs.update({f"MLP: {label}": run for label, run in run_methods(
            mlp, X, labels, mapping, kg, class_label, where / "mlp", methods=METHODS[1:], **common).items()})
        for label, (res, seconds) in runs.items():
            top = gene_ranking(kg, res.importance.ranking())[:20]
            immune = res.enrichment[(res.enrichment["q"] < 0.05) & res.enrichment["term_name"].str.contains(IMMUNE)]
            best = immune.nsmallest(1, "q")
            rows.append({
                "class": class_label, "method": label, "top20 in Wilcoxon top50": len(set(top) & set(wilcoxon)),
                "immune GO terms q<0.05": len(immune),
                "best immune term (q)": f"{best['term_name'].iloc[0]} ({best['q'].iloc[0]:.2g})" if len(best) else "-",
                "core nodes": res.summary["n_nodes"], "seconds": seconds, "top 20": " ".join(top),
            })
    table = pd.DataFrame(rows)
    info = {"cells": int(len(cohort.obs)), "genes": int(kg.n_rna), "test_accuracy": test["accuracy"],
            "test_macro_f1": test["macro_f1"], "train_seconds": train_seconds, "default_method": DEFAULT_METHOD,
            "top_k": settings.top_k, "mlp_test_accuracy": mlp_accuracy}
    return table, info


def show(head: str, table: pd.DataFrame, digits: int) -> list[str]:
    """Print a table under its heading; return the same as Markdown lines."""
    print(head)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}"))
    return [head, "", table.to_markdown(index=False, floatfmt=f".{digits}f"), ""]


def _classifier(info: dict) -> str:
    """The report's classifier clause: test accuracy and macro-F1, beside the MLP's accuracy."""
    return (f"classifier test accuracy {info['test_accuracy']:.3f}, macro-F1 {info['test_macro_f1']:.3f} "
            f"(MLP on the same inputs: {info['mlp_test_accuracy']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller simulated cohort, fewer epochs.")
    parser.add_argument("--part", choices=("all", "simulated", "pbmc"), default="all")
    parser.add_argument("--out", type=Path, default=Path("bench_output/explain_recovery"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=120, help="Core subgraph size (simulated part).")
    parser.add_argument("--epochs", type=int, default=None, help="Fine-tuning epochs, simulated (5 quick, 20 full).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Fine-tuning learning rate, simulated.")
    parser.add_argument("--max-cells", type=int, default=None,
                        help="Cells per class explained, simulated (default 200 quick, 500 full).")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    parser.add_argument("--pbmc-demo", type=Path, default=None,
                        help="Explain the model of a finished `celltosg demo --out DIR` instead of training one.")
    args = parser.parse_args()
    os.environ.setdefault("CELLTOSG_QUIET", "1")
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    record, markdown = {"load_average_at_start": load, "quick": args.quick, "seed": args.seed}, []
    if args.part in ("all", "simulated"):
        table, info = simulated(args, args.out / "simulated")
        head = (f"Simulated disease module: {info['cells']} meta-cells, {info['genes']} genes, "
                f"{info['planted_measured']} of {info['planted']} planted genes measured; {_classifier(info)}; "
                f"{info['explained_cells_per_class']} cells per class explained")
        markdown += show(head, table, 3)
        record["simulated"] = {"info": info, "table": table.to_dict("records")}
    if args.part in ("all", "pbmc"):
        table, info = pbmc(args, args.out / "pbmc")
        head = (f"PBMC ({info['cells']} cells, {info['genes']} genes), demo settings; {_classifier(info)}; core "
                f"subgraph top_k {info['top_k']}; default method {info['default_method']}")
        markdown += show(head, table.drop(columns=["top 20"]), 1)
        tops = table[table["method"].str.contains(f"{info['default_method']} (mean)", regex=False)]
        markdown += [f"Top 20 genes, {info['default_method']} (mean baseline):", ""]
        markdown += [f"- {r['class']}, {r['method']}: {r['top 20']}" for r in tops.to_dict("records")] + [""]
        record["pbmc"] = {"info": info, "table": table.to_dict("records")}
    record["load_average_at_end"] = os.getloadavg()
    print(f"load average (1, 5, 15 min): start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, end "
          f"{record['load_average_at_end'][0]:.1f} {record['load_average_at_end'][1]:.1f} "
          f"{record['load_average_at_end'][2]:.1f}")
    (args.out / "tables.md").write_text("\n".join(markdown) + "\n")
    (args.out / "summary.json").write_text(json.dumps(record, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
