"""The end-to-end demo: real PBMC cells -> TOSG store -> CellTOSG-FM -> baselines -> explanation -> report.

Each step is timed; the report (``OUT/report.md``) holds the tables, the figures and the command that
reproduces each step from the shell.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

EXPLAIN_CLASS = "CD14+ Monocyte"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo's training runs; ``quick`` trades accuracy for a smoke run of a few minutes."""

    pretrain_epochs: int
    finetune_epochs: int
    patience: int
    top_k: int

    @classmethod
    def for_mode(cls, quick: bool) -> DemoSettings:
        from celltosg.recipe import RECIPE

        return cls(1, 3, 3, 60) if quick else cls(RECIPE.pretrain_epochs, RECIPE.epochs, RECIPE.patience, 120)

    @staticmethod
    def model_config():
        """The benchmarks' best configuration, :data:`celltosg.recipe.RECIPE` (the CLI's defaults)."""
        from celltosg.recipe import RECIPE

        return RECIPE.config()


@dataclass
class StepLog:
    """Wall-clock seconds and the reproducing command of each demo step."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def run(self, name: str, command: str, function: Callable[[], Any]) -> Any:
        logger.info("step: %s", name)
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
        logger.info("step done: %s (%.1f s)", name, seconds)
        self.rows.append({"step": name, "seconds": round(seconds, 1), "command": command})
        return result


def _write_input(out: Path) -> Path:
    from celltosg.datasets import pbmc68k

    path = out / "input" / "pbmc68k.h5ad"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        pbmc68k().write_h5ad(path)
    return path


def _baselines(cohort, seed: int, quick: bool) -> pd.DataFrame:
    from celltosg.evaluation import evaluate_spec, model_specs, split_from_cohort

    split = split_from_cohort(cohort)
    rows = [evaluate_spec(spec, split, seed=seed, task="cell_type")
            for spec in model_specs(["celltypist", "logreg"], quick=quick)]
    return pd.DataFrame(rows)


def _results_table(fm_metrics: dict, baselines: pd.DataFrame) -> pd.DataFrame:
    rows = [{"model": "CellTOSG-FM (pretrained)", "accuracy": fm_metrics["accuracy"],
             "macro_f1": fm_metrics["macro_f1"]}]
    rows += [{"model": r["model"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
             for r in baselines.to_dict("records")]
    return pd.DataFrame(rows)


def _plot_results(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    positions = range(len(table))
    width = 0.38
    ax.barh([p - width / 2 for p in positions], table["accuracy"], height=width, label="accuracy")
    ax.barh([p + width / 2 for p in positions], table["macro_f1"], height=width, label="macro-F1")
    ax.set_yticks(list(positions), table["model"])
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("test score (held-out cells)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _markdown(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    return frame.to_markdown(index=False, floatfmt=floatfmt)


def _explanation_lines(explanation) -> list[str]:
    """The report's explanation section: method, top 20 genes with scores, figure, HTML link, enrichment."""
    summary = explanation.summary
    genes = pd.DataFrame(summary["top_genes"])[["rank", "symbol", "score"]]
    enrichment = explanation.enrichment.nsmallest(10, "p")[["collection", "term_name", "overlap", "p", "q"]]
    return [
        f"Method: {summary['method']} on the omic values, class-contrastive ({EXPLAIN_CLASS} logit minus the mean "
        f"of the other classes' logits), baseline = the cohort's {summary['baseline']} profile, over "
        f"{summary['n_cells']} cells. A positive score pushes a cell towards {EXPLAIN_CLASS}.",
        "",
        f"Top 20 genes of {EXPLAIN_CLASS} (best node per gene; rank among all graph nodes):",
        "",
        _markdown(genes, floatfmt=".4g"),
        "",
        f"Core subgraph: at most {summary['top_k']} nodes ({summary['n_seeds']} seeds, {summary['n_connectors']} "
        f"connectors; {summary['n_unconnected']} top nodes that could not be connected within the budget are "
        "listed in `explain/nodes.csv` with role `unconnected`). Interactive view (pan, zoom, hover a node, "
        "click a term to highlight its genes): [explain/subgraph.html](explain/subgraph.html).",
        "",
        "![subgraph](explain/subgraph.png)",
        "",
        "Enrichment of the core's genes against GO / KEGG, background = the cohort's measured genes:",
        "",
        _markdown(enrichment, floatfmt=".3g") if len(enrichment) else "(no enriched terms)",
        "",
        "![enrichment](explain/enrichment.png)",
        "",
    ]


def _report(out: Path, *, steps: StepLog, store_info: dict, cohort_summary: dict, pretrain_metrics: dict,
            results: pd.DataFrame, explanation, seed: int, quick: bool) -> Path:
    lines = [
        "# celltosg demo report",
        "",
        f"Seed {seed}{', quick mode' if quick else ''}. Data: the 700 PBMC cells (10 cell types) embedded in "
        "scanpy, log-normalised values turned back into counts, mapped onto the embedded human knowledge "
        "graph. All cells come from one donor, so the split is by cell (stratified): the scores below are "
        "optimistic compared with a donor-wise split.",
        "",
        "## Store",
        "",
        f"{store_info['n_cells']} TOSGs over {store_info['n_nodes']} RNA nodes; "
        f"{store_info['expression_bytes']:,} bytes of expression shards "
        f"({store_info['expression_bytes'] / max(store_info['n_cells'], 1):,.0f} bytes per cell).",
        "",
        "## Cohort",
        "",
        "```json",
        json.dumps(cohort_summary, indent=2),
        "```",
        "",
        "## Pretraining (edge masking)",
        "",
        f"Held-out-cell edge reconstruction: AUC {pretrain_metrics.get('auc', float('nan')):.3f}, "
        f"AP {pretrain_metrics.get('ap', float('nan')):.3f}.",
        "",
        "## Cell-type annotation on held-out cells",
        "",
        _markdown(results),
        "",
        "![results](results.png)",
        "",
        f"## Core signaling subgraph of {EXPLAIN_CLASS}",
        "",
        *_explanation_lines(explanation),
    ]
    lines += ["## Steps, times and commands", "", _markdown(pd.DataFrame(steps.rows), floatfmt=".1f"), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def run_demo(out: str | os.PathLike = "demo_output", *, seed: int = 0, quick: bool = False) -> Path:
    """Run the whole chain on the embedded PBMC data and write ``OUT/report.md``; returns its path."""
    from celltosg.build import build_store
    from celltosg.explain import explain_store
    from celltosg.loader import load_cohort
    from celltosg.recipe import RECIPE
    from celltosg.store import TOSGStore
    from celltosg.train import finetune, pretrain

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings.for_mode(quick)
    steps = StepLog()
    q = " --quick" if quick else ""

    h5ad = steps.run("write the embedded PBMC data", "python -c 'from celltosg.datasets import pbmc68k; "
                     "pbmc68k().write_h5ad(\"pbmc68k.h5ad\")'", lambda: _write_input(out))
    store_dir = out / "store"
    # PBMC 68k reduced keeps 765 genes, under the 25% of the pack's RNA nodes a full file measures: --force
    steps.run("build the TOSG store",
              f"celltosg build {h5ad} --out {store_dir} --lognorm --metacell-size 1 --min-genes 50 --min-cells 1 "
              "--force",
              lambda: build_store([h5ad], store_dir, lognorm=True, metacell_size=1, min_genes=50, min_cells=1,
                                  seed=seed, force_mapping=True))
    store = TOSGStore.open(store_dir)
    cohort = steps.run("load the cell-type cohort (split by cell)",
                       f"celltosg query {store_dir} --json",
                       lambda: load_cohort(store, {}, task="cell_type", split_by="cell", seed=seed))
    ckpt = out / "pretrain.ckpt"
    recipe = RECIPE
    pretrained = steps.run("pretrain CellTOSG-FM (edge masking)",
                           f"celltosg pretrain {store_dir} --split-by cell --epochs {settings.pretrain_epochs} "
                           f"--seed {seed} --out {ckpt}",
                           lambda: pretrain(cohort, config=settings.model_config(), epochs=settings.pretrain_epochs,
                                            batch_size=recipe.pretrain_batch_size, lr=recipe.pretrain_lr,
                                            mask_fraction=recipe.mask_fraction, seed=seed, out=ckpt))
    tuned = steps.run("fine-tune for cell types",
                      f"celltosg finetune {store_dir} --task cell_type --split-by cell --pretrained {ckpt} "
                      f"--epochs {settings.finetune_epochs} --patience {settings.patience} --seed {seed} "
                      f"--out {out / 'finetune'}",
                      lambda: finetune(cohort, task="cell_type", pretrained=ckpt, out_dir=out / "finetune",
                                       config=settings.model_config(), epochs=settings.finetune_epochs,
                                       batch_size=recipe.batch_size, patience=settings.patience, lr=recipe.lr,
                                       seed=seed, resume=False))
    baselines = steps.run("CellTypist and logistic regression on the same split",
                          f"celltosg benchmark {store_dir} --task cell_type --split-by cell "
                          f"--models celltypist,logreg --seeds 1 --out {out / 'benchmark'}{q}",
                          lambda: _baselines(cohort, seed, quick))
    explanation = steps.run(
        f"explain {EXPLAIN_CLASS}",
        f"celltosg explain {tuned.checkpoint} {store_dir} --class '{EXPLAIN_CLASS}' --top-k {settings.top_k} "
        f"--out {out / 'explain'}",
        lambda: explain_store(tuned.checkpoint, store, {}, class_label=EXPLAIN_CLASS, out_dir=out / "explain",
                              top_k=settings.top_k))
    results = _results_table(tuned.metrics["test"], baselines)
    _plot_results(results, out / "results.png")
    results.to_csv(out / "results.csv", index=False)
    cohort_summary = {"n_cells": int(len(cohort.obs)), "n_genes": int(cohort.kg.n_rna),
                      "n_proteins": int(cohort.kg.n_protein),
                      "split_sizes": cohort.obs["split"].value_counts().to_dict(),
                      "label_mapping": cohort.label_mapping}
    report = _report(out, steps=steps, store_info=store.info(), cohort_summary=cohort_summary,
                     pretrain_metrics=pretrained.metrics, results=results, explanation=explanation,
                     seed=seed, quick=quick)
    _print_summary(results, steps, report)
    return report


def _print_summary(results: pd.DataFrame, steps: StepLog, report: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="cell-type annotation, held-out cells")
    for column in ("model", "accuracy", "macro-F1"):
        table.add_column(column)
    for row in results.to_dict("records"):
        table.add_row(row["model"], f"{row['accuracy']:.3f}", f"{row['macro_f1']:.3f}")
    console.print(table)
    total = sum(r["seconds"] for r in steps.rows)
    console.print(f"{len(steps.rows)} steps in {total:.0f} s; report: {report}")
