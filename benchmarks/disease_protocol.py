"""The disease protocol: does the real knowledge graph beat a rewired one on ``module`` placement, not on ``random``?

Simulates the calibrated type 2 diabetes cohort (``celltosg simulate`` defaults: 24 donors in 3 datasets,
2000 genes, the default disease effect) once per gene placement (``module``: a connected PPI module;
``random``: as many genes scattered over the graph with the same expression distribution), builds a store
of meta-cells, and runs ``celltosg benchmark``'s harness on the loader's donor-split disease cohort, with
and without ComBat-seq, for the flat models (logistic regression, CellTypist, MLP) and the graph models
(CellTOSG-FM from scratch and pretrained, and the rewired-graph and no-message-passing ablations).
Every model of a seed sees the same split. Writes per (placement, correction) a ``results.csv`` /
``results.md`` / ``results.png`` under ``OUT/<placement>_<correction>/``, all rows in ``OUT/protocol.csv``
and the comparison in ``OUT/protocol.md`` (CellTOSG-FM minus rewired-graph FM, per placement, paired
over seeds). Rerun it unchanged after a model change; ``--graph-seeds``, ``--budget`` and
``--max-epochs`` reduce it for a small machine (the report says which protocol ran).

    PYTHONPATH=src .venv/bin/python benchmarks/disease_protocol.py --out res/disease_protocol
    # the reduced run of docs/benchmarks.md (2-core CPU machine):
    PYTHONPATH=src .venv/bin/python benchmarks/disease_protocol.py --out res/disease_protocol \
        --budget 2 --graph-seeds 1 --graph-budget 1 --max-epochs 10 --graph-corrections none
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from disease_calibration import DISEASE, cohort_store  # noqa: E402

FLAT = ("logreg", "celltypist", "mlp")
GRAPH = ("celltosg_fm", "fm_rewired_kg", "fm_no_message_passing", "celltosg_fm_pretrained")


def run_arm(store: Path, out: Path, *, correction: str | None, flat: list[str], graph: list[str], seeds: int,
            graph_seeds: int, budget: int, graph_budget: int, max_epochs: int | None):
    """Rows of every model on one store and correction: flat models on ``seeds`` seeds, graph models on
    the first ``graph_seeds`` of them."""
    import pandas as pd

    from celltosg.evaluation import run_benchmark
    from celltosg.evaluation._models import model_specs
    from celltosg.evaluation._tasks import store_splits

    make = store_splits(store, {"disease": DISEASE}, task="disease", split_by="donor", correction_method=correction)
    frames = []
    partial = out / "partial.csv"
    out.mkdir(parents=True, exist_ok=True)
    if flat:
        specs = model_specs(flat, budget=budget, max_epochs=max_epochs)
        frames.append(run_benchmark(make, specs, seeds=list(range(seeds)), task="disease", partial_csv=partial))
    if graph and graph_seeds:
        specs = model_specs(graph, budget=graph_budget, max_epochs=max_epochs)
        frames.append(run_benchmark(make, specs, seeds=list(range(graph_seeds)), task="disease",
                                    partial_csv=out / "partial_graph.csv"))
    return pd.concat(frames, ignore_index=True)


def paired_difference(rows, model: str, reference: str, metric: str) -> tuple[float, float, int]:
    """Mean and sd over seeds of ``model - reference`` on ``metric`` (seeds where both ran)."""
    ok = rows[rows["status"] == "ok"].pivot_table(index="seed", columns="model", values=metric)
    if model not in ok or reference not in ok:
        return float("nan"), float("nan"), 0
    diff = (ok[model] - ok[reference]).dropna()
    return float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, len(diff)


def report(table, args) -> str:
    """protocol.md: the protocol that ran, the per-arm tables and the FM - rewired comparison."""
    from celltosg.evaluation import markdown_table, summarize

    lines = [f"# Disease protocol (effect {args.effect if args.effect is not None else 'default'})", "",
             f"Flat models: {', '.join(args.flat) or 'none'} on {args.seeds} seeds, budget {args.budget}; graph "
             f"models: {', '.join(args.graph) or 'none'} on {args.graph_seeds} seed(s), budget {args.graph_budget}, "
             f"corrections {', '.join(args.graph_corrections)}; max epochs {args.max_epochs or 'model default'}; "
             f"load average at the end {os.getloadavg()[0]:.1f}.", ""]
    for (placement, correction), rows in table.groupby(["placement", "correction"], sort=False):
        lines += [f"## {placement} placement, correction {correction}", "", markdown_table(summarize(rows)), ""]
    lines += ["## CellTOSG-FM minus the rewired-graph FM (paired over seeds)", "",
              "| placement | correction | seeds | accuracy | donor AUROC |", "|---|---|---|---|---|"]
    for (placement, correction), rows in table.groupby(["placement", "correction"], sort=False):
        acc = paired_difference(rows, "celltosg_fm", "fm_rewired_kg", "accuracy")
        auc = paired_difference(rows, "celltosg_fm", "fm_rewired_kg", "donor_auroc")
        if acc[2]:
            lines.append(f"| {placement} | {correction} | {acc[2]} | {acc[0]:+.3f} ± {acc[1]:.3f} | "
                         f"{auc[0]:+.3f} ± {auc[1]:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("disease_protocol"))
    parser.add_argument("--workdir", type=Path, default=None, help="Simulations and stores (default OUT/data); "
                        "a directory of disease_calibration.py is reused.")
    parser.add_argument("--effect", type=float, default=None, help="Disease effect (default: the simulator's).")
    parser.add_argument("--placements", default="module,random")
    parser.add_argument("--corrections", default="none,combat_seq")
    parser.add_argument("--graph-corrections", default="none,combat_seq")
    parser.add_argument("--flat", default=",".join(FLAT))
    parser.add_argument("--graph", default=",".join(GRAPH))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--graph-seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=4, help="Configurations per flat model.")
    parser.add_argument("--graph-budget", type=int, default=4, help="Configurations per graph model.")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--donors", type=int, default=24)
    parser.add_argument("--cells", type=int, default=9600)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.flat = [m for m in args.flat.split(",") if m]
    args.graph = [m for m in args.graph.split(",") if m]
    args.graph_corrections = args.graph_corrections.split(",")
    import pandas as pd
    import torch

    from celltosg.build._simulate import DISEASE_EFFECT
    from celltosg.evaluation import write_results
    from celltosg.io_utils import atomic_file

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    effect = DISEASE_EFFECT if args.effect is None else args.effect
    workdir = args.workdir or args.out / "data"
    workdir.mkdir(parents=True, exist_ok=True)
    frames = []
    for placement in args.placements.split(","):
        store = cohort_store(workdir, effect=effect, placement=placement, n_cells=args.cells, n_donors=args.donors,
                             n_genes=args.genes, sim_seed=0)
        for correction in args.corrections.split(","):
            start = time.perf_counter()
            arm = args.out / f"{placement}_{correction}"
            rows = run_arm(store, arm, correction=None if correction == "none" else correction, flat=args.flat,
                           graph=args.graph if correction in args.graph_corrections else [], seeds=args.seeds,
                           graph_seeds=args.graph_seeds, budget=args.budget, graph_budget=args.graph_budget,
                           max_epochs=args.max_epochs)
            write_results(rows, arm, title=f"Disease, {placement} placement, correction {correction}",
                          notes=f"Effect {effect}; split by donor; see benchmarks/disease_protocol.py.")
            frames.append(rows.assign(placement=placement, correction=correction, effect=effect))
            table = pd.concat(frames, ignore_index=True)
            with atomic_file(args.out / "protocol.csv") as tmp:
                table.to_csv(tmp, index=False)
            with atomic_file(args.out / "protocol.md") as tmp:
                tmp.write_text(report(table, args))
            print(f"{placement} / {correction}: {time.perf_counter() - start:.0f} s", flush=True)
    print((args.out / "protocol.md").read_text())


if __name__ == "__main__":
    main()
