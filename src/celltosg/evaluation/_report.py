"""Write a benchmark's results: results.csv (one row per model and seed), results.md, results.png."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.io_utils import atomic_file

logger = logging.getLogger(__name__)

SUMMARY_METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("train_s", "train s"),
                   ("peak_mem_mb", "peak MB"))
#: Donor-level columns, shown when some row has them (donor-split tasks with one label per donor).
DONOR_METRICS = (("donor_accuracy", "donor accuracy"), ("donor_auroc", "donor AUROC"))


def merge_results(paths) -> pd.DataFrame:
    """Concatenate ``results.csv`` files of runs on the same splits (for example CPU and GPU runs)."""
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds per model (models in first-seen order).

    Columns: ``model``, ``n_seeds`` (rows with status ok), ``status`` (the distinct statuses), ``device``, and
    ``<metric>_mean`` / ``<metric>_sd`` for accuracy, macro_f1, donor_accuracy, donor_auroc, train_s,
    peak_mem_mb, tune_s (NaN where a column is absent or empty).
    """
    rows = []
    for model, group in results.groupby("model", sort=False):
        ok = group[group["status"] == "ok"]
        row = {"model": model, "n_seeds": len(ok), "status": ", ".join(sorted(set(group["status"]))),
               "device": ", ".join(sorted(set(ok["device"].dropna().astype(str)))) if "device" in ok else ""}
        for metric in ("accuracy", "macro_f1", "donor_accuracy", "donor_auroc", "train_s", "peak_mem_mb", "tune_s"):
            values = ok[metric].astype(float).dropna() if metric in ok else pd.Series(dtype=float)
            row[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            row[f"{metric}_sd"] = values.std(ddof=1) if len(values) > 1 else 0.0 if len(values) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, sd: float, metric: str) -> str:
    if np.isnan(mean):
        return "n/a"
    digits = 1 if metric in ("train_s", "peak_mem_mb") else 3
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table: mean ± sd over seeds (donor columns when any model has them)."""
    donor = [m for m in DONOR_METRICS if summary[f"{m[0]}_mean"].notna().any()]
    metrics = [*SUMMARY_METRICS[:2], *donor, *SUMMARY_METRICS[2:]]
    header = ["model", "seeds"] + [label for _, label in metrics] + ["device", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.itertuples(index=False):
        data = row._asdict()
        cells = [str(data["model"]), str(data["n_seeds"])]
        cells += [_cell(data[f"{m}_mean"], data[f"{m}_sd"], m) for m, _ in metrics]
        cells += [str(data["device"]), str(data["status"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_results(summary: pd.DataFrame, path: Path) -> Path:
    """Bars of accuracy and macro-F1 (mean ± sd) and train seconds (log scale) per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summary[summary["n_seeds"] > 0]
    models = summary["model"].tolist()
    y = np.arange(len(models))
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(models) + 1.8), sharey=True)
    for ax, (metric, label) in zip(axes, SUMMARY_METRICS[:3], strict=False):
        ax.barh(y, summary[f"{metric}_mean"], xerr=summary[f"{metric}_sd"], color="#4c78a8", capsize=3)
        ax.set_xlabel(f"{label} (mean ± sd over seeds)")
        if metric == "train_s":
            ax.set_xscale("log")
        else:
            ax.set_xlim(0, 1)
    axes[0].set_yticks(y, models)
    axes[0].invert_yaxis()
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def write_results(results: pd.DataFrame, out_dir: str | Path, *, title: str = "Benchmark",
                  notes: str = "") -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and ``results.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "md": out / "results.md", "png": out / "results.png"}
    with atomic_file(paths["csv"]) as tmp:
        results.to_csv(tmp, index=False)
    summary = summarize(results)
    seeds = sorted(results["seed"].unique().tolist())
    text = (f"# {title}\n\n{notes}\n\nMean ± sd over seeds {seeds}; test metrics of the configuration with the "
            "best validation macro-F1; train s and peak MB (resident memory above the start, plus CUDA) "
            "belong to that configuration's fit.\n\n" + markdown_table(summary) + "\n![results](results.png)\n")
    with atomic_file(paths["md"]) as tmp:
        tmp.write_text(text)
    plot_results(summary, paths["png"])
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
