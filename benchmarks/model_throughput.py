"""Train-step throughput and peak memory: CellTOSG-FM on one shared graph vs the reference's batching.

The reference way is the same architecture (same fusion, readout and head) but each cell is a PyG
``Data`` with its own copy of the edge list, merged per step with ``Batch.from_data_list`` and run
through PyG's ``GATConv`` / ``GCNConv``. Ours runs each layer once per batch over one shared edge list.

Every configuration runs in a fresh subprocess, so its peak memory (``ru_maxrss`` on CPU,
``torch.cuda.max_memory_allocated`` on CUDA) is its own. Graph: the human pack when it is installed,
else a random graph of its size (19k RNA + 19k protein nodes, about 1.1M edges); ``--quick`` uses a
random graph of 3k nodes with the pack's edge density (about 27 edges per node).

    .venv/bin/python benchmarks/model_throughput.py [--quick] [--device auto|cpu|cuda]

``--epochs`` instead measures whole fine-tuning epochs, before and after the issue-11 changes, each in
a fresh process: one epoch on the demo's PBMC cohort (483 training cells, 1479 nodes; target <= 1.0 s
on one thread) and, with ``--pack-cells``, training steps on the full human pack (about 40k nodes)
extrapolated to an epoch of that many meta-cells (target <= 60 s for 600 on 2 cores; one thread by default,
``--pack-threads``), over all 40k nodes
and over the 2,000 genes the recipe reads (``RECIPE.max_genes``, chosen by variance over the cells as
``celltosg.loader.most_variable_genes`` does; random values here). "before" is the
previous default (pooled readout, node dropout 0.1, glibc's default allocator behaviour); "after" is
``celltosg.recipe.RECIPE`` with freed memory kept for reuse (``celltosg.train._memory``). The sparse
product change (``torch.sparse.mm``) cannot be switched off and is in both.

    .venv/bin/python benchmarks/model_throughput.py --epochs [--pack-cells 600]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

# (name, implementation, conv): ours on the shared graph vs the reference way with the closest PyG conv
PAIRS = {
    "attention": (("ours", "attention"), ("pyg", "gat")),
    "gcn": (("ours", "gcn"), ("pyg", "gcn")),
    "gat": (("ours", "gat"), ("pyg", "gat")),
}
TEXT_DIM, SEQ_DIM, N_CLASSES = 384, 32, 10


def random_graph_inputs(n_genes: int, n_ppi_pairs: int, n_lr: int, seed: int = 0):
    """GraphInputs of a random graph: RNA i -> protein i, random PPI pairs (both directions), L -> R."""
    from celltosg.model import GraphInputs

    g = torch.Generator().manual_seed(seed)
    proteins = n_genes + torch.arange(n_genes)
    pairs = torch.randint(0, n_genes, (2, int(n_ppi_pairs * 2.3)), generator=g)
    pairs = pairs[:, pairs[0] < pairs[1]]
    pairs = torch.unique(pairs[0] * n_genes + pairs[1])
    pairs = pairs[torch.randperm(pairs.numel(), generator=g)[:n_ppi_pairs]]
    a, b = n_genes + pairs // n_genes, n_genes + pairs % n_genes
    lr = n_genes + torch.randint(0, n_genes, (2, n_lr), generator=g)
    n = 2 * n_genes
    return GraphInputs(
        n_rna=n_genes, n_protein=n_genes,
        internal_edge_index=torch.stack([torch.arange(n_genes), proteins]),
        global_edge_index=torch.cat([torch.stack([torch.cat([a, b]), torch.cat([b, a])]), lr], 1),
        text_emb=torch.randn(n, TEXT_DIM, generator=g),
        seq_feat=torch.randn(n, SEQ_DIM, generator=g),
        seq_mask=torch.rand(n, generator=g) < 0.5,
    )


def random_feature_inputs(kg):
    """GraphInputs of ``kg`` with seeded random frozen text and sequence features (no encoder needed)."""
    from celltosg.model import graph_inputs

    rng = np.random.default_rng(0)
    mask = np.zeros(kg.n_nodes, dtype=bool)
    mask[kg.sequences["node_index"].to_numpy()] = True
    text = rng.normal(size=(kg.n_nodes, TEXT_DIM)).astype(np.float32)
    seq = rng.normal(size=(kg.n_nodes, SEQ_DIM)).astype(np.float32)
    return graph_inputs(kg, text, seq, mask)


def load_graph(quick: bool):
    """(GraphInputs, description): the human pack with random frozen features, else a random graph."""
    if not quick:
        from celltosg.kg import KnowledgeGraph, embedded_pack_path

        if (embedded_pack_path("human") / "pack.json").exists():
            return random_feature_inputs(KnowledgeGraph.load("human")), "human pack"
        return random_graph_inputs(19_000, 530_000, 3_000), "random graph, human-pack size"
    return random_graph_inputs(1_500, 40_000, 300), "random graph (quick, human-pack density)"


class _PyGBlock(nn.Module):
    """The residual block of CellTOSG-FM with a PyG conv on a flat (B*N, hidden) batch."""

    def __init__(self, conv: str, hidden: int, heads: int, dropout: float):
        super().__init__()
        from torch_geometric.nn import GATConv, GCNConv

        self.conv = GATConv(hidden, hidden // heads, heads=heads) if conv == "gat" else GCNConv(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h, edge_index):
        return self.norm(h + self.dropout(nn.functional.gelu(self.conv(h, edge_index))))


class ReferenceWayFM(nn.Module):
    """CellTOSG-FM written the reference way: per-cell ``Data`` objects merged by ``Batch.from_data_list``."""

    def __init__(self, graph, config):
        super().__init__()
        from celltosg.model import AttentionReadout, NodeFusion

        self.graph, self.config = graph, config
        for name in ("text_emb", "seq_feat", "seq_mask"):
            self.register_buffer(name, getattr(graph, name), persistent=False)
        self.fusion = NodeFusion(config.hidden, config.text_dim, config.seq_dim, use_text=config.use_text,
                                 use_seq=config.use_seq, fusion=config.fusion)
        block = lambda: _PyGBlock(config.conv, config.hidden, config.heads, config.dropout)  # noqa: E731
        self.internal_layers = nn.ModuleList([block()])
        self.global_layers = nn.ModuleList([block() for _ in range(config.layers)])
        self.readout = AttentionReadout(config.hidden, config.readout_dim)
        self.head = nn.Linear(config.readout_dim, config.n_classes)

    def forward(self, x_rna):
        from torch_geometric.data import Batch, Data

        h = self.fusion(x_rna, self.graph.n_protein, self.text_emb, self.seq_feat, self.seq_mask)
        batch, n, hidden = h.shape
        for edges, layers in ((self.graph.internal_edge_index, self.internal_layers),
                              (self.graph.global_edge_index, self.global_layers)):
            merged = Batch.from_data_list([Data(x=h[b], edge_index=edges.to(h.device).clone())
                                           for b in range(batch)])
            flat = merged.x
            for layer in layers:
                flat = layer(flat, merged.edge_index)
            h = flat.view(batch, n, hidden)
        cell = self.readout(h)
        return {"node": h, "cell": cell, "logits": self.head(cell)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker(impl: str, conv: str, batch: int, steps: int, quick: bool, device_name: str,
           memory_limit_gb: float, threads: int) -> dict:
    """One configuration's train steps; returns its figures."""
    from celltosg.model import CellTOSGFM, FMConfig

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    if device.type == "cpu" and memory_limit_gb > 0:  # fail with an error instead of starving the machine
        limit = int(memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    graph, graph_name = load_graph(quick)
    config = FMConfig(conv=conv, text_dim=TEXT_DIM, seq_dim=SEQ_DIM, n_classes=N_CLASSES)
    model = (CellTOSGFM(graph, config) if impl == "ours" else ReferenceWayFM(graph, config)).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.log1p(torch.rand(batch, graph.n_rna, generator=g) * 20).to(device)
    y = torch.randint(0, N_CLASSES, (batch,), generator=g).to(device)
    setup_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps + 1):  # the first step warms up caches and allocators and is not timed
        _sync(device)
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x)["logits"], y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    step = float(np.median(times[1:]))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"impl": impl, "conv": conv, "batch": batch, "step_s": step, "cells_per_s": batch / step,
               "peak_rss_mb": peak_rss, "step_rss_mb": peak_rss - setup_rss, "graph": graph_name,
               "n_nodes": graph.n_nodes,
               "n_edges": int(graph.internal_edge_index.shape[1] + graph.global_edge_index.shape[1]),
               "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        figures["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return figures


EPOCH_SETTINGS = {
    "before": ({"readout": "pool", "skip": False, "node_dropout": 0.1, "hidden": 32, "readout_dim": 32}, False),
    "after": ({}, True),
}


def epoch_worker(setting: str, where: str, threads: int, pack_cells: int) -> dict:
    """Seconds of one fine-tuning epoch (PBMC) or of an extrapolated epoch (pack) under ``setting``."""
    torch.set_num_threads(threads)
    changes, reuse = EPOCH_SETTINGS[setting]
    if reuse:
        from celltosg.train._memory import reuse_freed_memory

        reuse_freed_memory()
    from celltosg.recipe import RECIPE
    from celltosg.train import ClassifierPlan, epoch_generator, tensor_batches, train_one_epoch

    if where == "pbmc":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from celltosg.train import build_graph_inputs
        from pbmc_accuracy import pbmc_cohort

        cohort = pbmc_cohort(0)
        graph = build_graph_inputs(cohort.kg, seq_dim=RECIPE.config().seq_dim)
        X = torch.from_numpy(cohort.X("train"))
        y = cohort.labels("train")
    else:
        graph, _ = load_graph(False)
        g = torch.Generator().manual_seed(1)
        X = torch.log1p(torch.rand(pack_cells, graph.n_rna, generator=g) * 20)
        y = np.arange(pack_cells) % N_CLASSES
        if where == "pack-genes":
            graph, X = most_variable_subgraph(X, RECIPE.max_genes)
    from celltosg.model import CellTOSGFM

    config = RECIPE.config(**changes, text_dim=graph.text_emb.shape[1], seq_dim=graph.seq_feat.shape[1],
                           n_classes=int(y.max()) + 1)
    torch.manual_seed(0)
    model = CellTOSGFM(graph, config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=RECIPE.lr)
    weights = torch.ones(config.n_classes)
    plan, batches = ClassifierPlan(model, weights, None), tensor_batches((X, torch.as_tensor(y)), RECIPE.batch_size)

    def one_epoch(epoch: int) -> None:
        generator = epoch_generator(0, epoch)
        train_one_epoch(plan, model, optimiser, batches(epoch, generator), generator=generator, device="cpu")

    if where == "pbmc":
        one_epoch(0)
        times, cpu = [], []
        for epoch in range(1, 4):
            start, start_cpu = time.perf_counter(), time.process_time()
            one_epoch(epoch)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return {"setting": setting, "where": where, "epoch_s": float(np.median(times)),
                "epoch_cpu_s": float(np.median(cpu)), "cells": len(X), "n_nodes": graph.n_nodes, "threads": threads}
    batch, steps = RECIPE.batch_size, 3
    step_times, step_cpu = [], []
    for step in range(steps + 1):
        idx = torch.arange(step * batch, (step + 1) * batch)
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = nn.functional.cross_entropy(model(X[idx])["logits"], torch.as_tensor(y[idx.numpy()]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step_times.append(time.perf_counter() - start)
        step_cpu.append(time.process_time() - start_cpu)
    per_cell = float(np.median(step_times[1:])) / batch
    return {"setting": setting, "where": where, "epoch_s": per_cell * pack_cells,
            "epoch_cpu_s": float(np.median(step_cpu[1:])) / batch * pack_cells, "cells": pack_cells,
            "n_nodes": graph.n_nodes, "threads": threads, "batch": batch,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def most_variable_subgraph(X: torch.Tensor, n_genes: int):
    """GraphInputs of the human pack over the ``n_genes`` genes the model would read from the cells ``X``
    (n, n_rna) (``celltosg.loader.most_variable_genes``), and those columns of ``X``."""
    from celltosg.kg import KnowledgeGraph
    from celltosg.loader import most_variable_genes
    from celltosg.train import InMemoryCohort

    cohort = InMemoryCohort(X.numpy(), ["train"] * len(X), KnowledgeGraph.load("human"))
    subset = most_variable_genes(cohort, n_genes)
    return random_feature_inputs(subset.kg), torch.from_numpy(subset.X("train"))


def run_epochs(args) -> None:
    """Before/after fine-tuning epoch times (see the module docstring)."""
    print(f"torch={torch.__version__} load average={os.getloadavg()[0]:.1f}", flush=True)
    places = [("pbmc", 1, 0)]
    if args.pack_cells:
        places += [(where, args.pack_threads, args.pack_cells) for where in ("pack", "pack-genes")]
    for where, threads, cells in places:
        rows = {}
        for setting in EPOCH_SETTINGS:
            command = [sys.executable, __file__, "--epoch-worker", setting, where, str(threads), str(cells)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                print(f"{where} {setting}: exit {done.returncode}: {tail[0]}", flush=True)
                continue
            rows[setting] = json.loads(done.stdout.strip().splitlines()[-1])
            row = rows[setting]
            what = "one epoch" if where == "pbmc" else f"epoch of {cells} cells, extrapolated from {row['batch']}-cell steps"
            print(f"{where:<10} {setting:<7} {row['epoch_s']:>8.2f} s wall {row['epoch_cpu_s']:>8.2f} s CPU  "
                  f"({what}, {row['n_nodes']} nodes, "
                  f"{row['threads']} threads)", flush=True)
        if len(rows) == 2:
            print(f"  ratio before/after ({where}): x{rows['before']['epoch_s'] / rows['after']['epoch_s']:.1f}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)


def run_configuration(impl, conv, batch, steps, quick, device, timeout, memory_limit_gb, threads) -> dict:
    """Run :func:`worker` in a fresh interpreter and read its JSON line."""
    command = [sys.executable, __file__, "--worker", impl, conv, str(batch), "--steps", str(steps),
               "--device", device, "--memory-limit-gb", str(memory_limit_gb), "--threads", str(threads)]
    command += ["--quick"] if quick else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "conv": conv, "batch": batch, "error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"impl": impl, "conv": conv, "batch": batch, "error": f"exit {done.returncode}: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 3k-node random graph with the pack's density")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--convs", nargs="+", default=None, choices=sorted(PAIRS),
                        help="ours with this conv vs the reference way with the closest PyG conv "
                             "(default: attention and gcn; attention alone with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps after one warm-up step (default 2)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per configuration")
    parser.add_argument("--memory-limit-gb", type=float, default=12.0,
                        help="address-space cap per CPU configuration (0 = none); beyond it the row reports "
                             "an allocation error")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per configuration (0 = torch's default); default 1 on CPU, where "
                             "a shared machine's spinning threads otherwise swamp the timings")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--epochs", action="store_true", help="before/after fine-tuning epoch times instead")
    parser.add_argument("--pack-threads", type=int, default=1, help="with --pack-cells: torch threads (on a busy "
                        "2-core machine 2 threads wait on each other: 0.7-4 s against 0.25 s per 2,000-gene step)")
    parser.add_argument("--pack-cells", type=int, default=0, help="with --epochs: also the full pack, this many "
                                                                  "meta-cells per epoch (e.g. 600)")
    parser.add_argument("--epoch-worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "CONV", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    steps = args.steps or 2
    if args.threads is None:
        args.threads = 1 if device == "cpu" else 0
    convs = args.convs or (["attention"] if args.quick else ["attention", "gcn"])
    if args.epoch_worker:
        setting, where, threads, cells = args.epoch_worker
        print(json.dumps(epoch_worker(setting, where, int(threads), int(cells))))
        return
    if args.epochs:
        run_epochs(args)
        return
    if args.worker:
        impl, conv, batch = args.worker
        print(json.dumps(worker(impl, conv, int(batch), steps, args.quick, device, args.memory_limit_gb,
                                args.threads)))
        return

    print(f"device={device} torch={torch.__version__} threads={args.threads or torch.get_num_threads()} "
          f"load average={os.getloadavg()[0]:.1f} steps={steps}", flush=True)
    memory = "peak_gpu_mb" if device == "cuda" else "peak_rss_mb"
    header = f"{'impl':<5} {'conv':<9} {'B':>3} {'step s':>8} {'cells/s':>9} {'peak MB':>9} {'step MB':>9}"
    print(header, flush=True)
    rows = []
    for conv in convs:
        for batch in args.batch_sizes:
            pair = [run_configuration(impl, c, batch, steps, args.quick, device, args.timeout, args.memory_limit_gb,
                                      args.threads)
                    for impl, c in PAIRS[conv]]
            rows.extend(pair)
            for row in pair:
                if "error" in row:
                    print(f"{row['impl']:<5} {row['conv']:<9} {batch:>3} {row['error']}", flush=True)
                    continue
                step_mb = row.get("peak_gpu_mb", row["step_rss_mb"])
                print(f"{row['impl']:<5} {row['conv']:<9} {batch:>3} {row['step_s']:>8.3f} "
                      f"{row['cells_per_s']:>9.1f} {row[memory]:>9.0f} {step_mb:>9.0f}", flush=True)
            ours, ref = pair
            if "error" not in ours and "error" not in ref:
                speed = ours["cells_per_s"] / ref["cells_per_s"]
                mem_total = ours[memory] / ref[memory]
                mem_step = (ours.get("peak_gpu_mb", ours["step_rss_mb"])
                            / max(ref.get("peak_gpu_mb", ref["step_rss_mb"]), 1e-9))
                print(f"  ratio ours/{ref['conv']}-reference-way B={batch}: throughput x{speed:.1f}, "
                      f"peak memory {mem_total:.2f}, step memory {mem_step:.2f}", flush=True)
    if rows and "error" not in rows[0]:
        print(f"graph: {rows[0]['graph']}, {rows[0]['n_nodes']} nodes, {rows[0]['n_edges']} edges")
    print("step MB: peak RSS growth during the train steps (CPU) or peak GPU memory allocated (CUDA)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
