"""Lightning's per-epoch overhead on CPU against the plain training engine (celltosg.train.fit), same model,
same data, same validation after every epoch: the measurement behind the engine being a plain loop.

Two models on the PBMC demo cohort (700 cells over the human pack's subgraph of their genes, 60/20/20
split by cell): the recipe's CellTOSG-FM (graph features random, as the data path is what differs) and a
small MLP, where the fixed per-step cost of the framework shows most. Each arm runs in a fresh process
(one torch thread) and reports the import time of its framework and the median seconds of an epoch
after a warm-up epoch.

Run: PYTHONPATH=src python benchmarks/engine_overhead.py [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _setup(model_kind: str):
    import torch

    sys.path.insert(0, HERE)
    from celltosg.model import CellTOSGFM, graph_inputs
    from celltosg.recipe import RECIPE
    from celltosg.train import class_weights
    from pbmc_accuracy import pbmc_cohort

    cohort = pbmc_cohort(0)
    kg = cohort.kg
    rng = np.random.default_rng(0)
    graph = graph_inputs(kg, rng.normal(size=(kg.n_nodes, 32)), rng.normal(size=(kg.n_nodes, 16)),
                         np.arange(kg.n_nodes) >= kg.n_rna)
    n_classes = len(cohort.label_mapping)
    torch.manual_seed(0)
    if model_kind == "fm":
        model = CellTOSGFM(graph, RECIPE.config(text_dim=32, seq_dim=16, n_classes=n_classes))
    else:
        model = torch.nn.Sequential(torch.nn.Linear(kg.n_rna, 256), torch.nn.ReLU(), torch.nn.Linear(256, n_classes))
    data = {s: (torch.from_numpy(cohort.X(s)), torch.from_numpy(cohort.labels(s))) for s in ("train", "val")}
    weights = torch.from_numpy(class_weights(cohort.labels("train"), n_classes))
    return model, data, weights


def run_plain(model_kind: str, epochs: int) -> dict:
    from celltosg.recipe import RECIPE
    from celltosg.train import ClassifierPlan, FitSettings, fit, input_batches, tensor_batches

    model, data, weights = _setup(model_kind)
    (X, y), (Xv, yv) = data["train"], data["val"]
    times: list[float] = []

    clocks = []

    def batches(epoch, generator):
        if clocks:
            times.append(time.perf_counter() - clocks[-1])
        clocks.append(time.perf_counter())
        yield from tensor_batches((X, y), RECIPE.batch_size)(epoch, generator)

    plan = ClassifierPlan(model, weights, (lambda: input_batches(Xv, RECIPE.batch_size), yv.numpy()))
    fit(plan, batches, FitSettings(epochs=epochs + 1, lr=RECIPE.lr, patience=None, description="plain"))
    times.append(time.perf_counter() - clocks[-1])
    return {"epoch_s": statistics.median(times[1:]), "steps": -(-len(X) // RECIPE.batch_size)}


def run_lightning(model_kind: str, epochs: int) -> dict:
    start = time.perf_counter()
    import lightning.pytorch as pl

    import_s = time.perf_counter() - start
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from celltosg.recipe import RECIPE
    from celltosg.train import input_batches
    from celltosg.train._classify import evaluate, logits_of

    model, data, weights = _setup(model_kind)
    (X, y), (Xv, yv) = data["train"], data["val"]
    times: list[float] = []

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(logits_of(self.model(batch[0])), batch[1], weight=weights)

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.model.parameters(), lr=RECIPE.lr, weight_decay=1e-4)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs + 1)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

        def on_train_epoch_start(self):
            self.clock = time.perf_counter()

        def on_train_epoch_end(self):
            evaluate(self.model, input_batches(Xv, RECIPE.batch_size), yv.numpy(), weights)
            times.append(time.perf_counter() - self.clock)

    loader = DataLoader(TensorDataset(X, y), batch_size=RECIPE.batch_size, shuffle=True)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs + 1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    trainer.fit(Module(), train_dataloaders=loader)
    return {"epoch_s": statistics.median(times[1:]), "import_s": import_s}


def worker(arm: str, model_kind: str, epochs: int) -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["CELLTOSG_QUIET"] = "1"
    result = (run_plain if arm == "plain" else run_lightning)(model_kind, epochs)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per arm (after one warm-up)")
    parser.add_argument("--worker", nargs=2, metavar=("ARM", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.epochs)
        return
    env = {**os.environ, "CELLTOSG_QUIET": "1", "OMP_NUM_THREADS": "1"}
    for model_kind, label in (("fm", "CellTOSG-FM (recipe)"), ("mlp", "MLP 256")):
        figures = {}
        for arm in ("plain", "lightning"):
            done = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--worker", arm, model_kind],
                                  env=env, capture_output=True, text=True, check=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
            figures[arm] = json.loads(line.removeprefix("RESULT "))
        plain, light = figures["plain"]["epoch_s"], figures["lightning"]["epoch_s"]
        steps = figures["plain"]["steps"]
        print(f"{label}: plain engine {plain:.3f} s/epoch | Lightning Trainer {light:.3f} s/epoch | "
              f"overhead {light - plain:+.3f} s/epoch ({(light - plain) / steps * 1e3:+.1f} ms/step over {steps} "
              f"steps), ratio {light / plain:.2f}x; Lightning import {figures['lightning']['import_s']:.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
