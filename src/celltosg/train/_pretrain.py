"""Edge-masking pretraining of the CellTOSG-FM encoder, evaluated on held-out cells."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from celltosg.progress import progress
from celltosg.train._checkpoint import model_payload, save_checkpoint
from celltosg.train._data import CohortLike, batches, held_out_tensor, input_scaling, split_tensor
from celltosg.train._graph import build_graph_inputs, model_genes
from celltosg.train._loop import cpu_state, epoch_generator
from celltosg.train._memory import reuse_freed_memory

log = logging.getLogger(__name__)

EVAL_STREAM = 1_000_003  # epoch index of the generator that draws the evaluation masks


@dataclass
class PretrainResult:
    """Outcome of :func:`pretrain`: held-out ``metrics`` (edge AUC / AP), per-epoch ``history``, checkpoint."""

    metrics: dict[str, Any]
    history: list[dict[str, float]]
    checkpoint: Path | None


def evaluate_edges(model, objective, X, *, seed: int, rounds: int, batch_size: int) -> dict[str, float]:
    """Edge AUC / AP on the cells ``X`` (n, n_genes) over ``rounds`` seeded masks, in eval mode.

    Every round hides a fresh set of PPI pairs from the encoder and scores them and as many non-edges
    in every cell; the scores of all rounds and cells are pooled.
    """
    import torch

    from celltosg.model import edge_metrics

    model.eval()
    objective.eval()
    device = next(model.parameters()).device
    generator = epoch_generator(seed, EVAL_STREAM)
    logits, labels = [], []
    with torch.no_grad():
        for _ in range(rounds):
            state = generator.get_state()
            for idx in batches(len(X), batch_size):
                generator.set_state(state)  # the same mask for every batch of this round
                out = objective(model, X[idx].to(device), generator=generator)
                logits.append(out.logits.flatten().cpu())
                labels.append(out.labels.flatten().cpu())
    return edge_metrics(torch.cat(logits), torch.cat(labels))


def pretrain(cohort: CohortLike, *, config=None, epochs: int = 5, batch_size: int = 16, lr: float = 3e-3,
             mask_fraction: float = 0.05, degree_weight: float = 0.1, weight_decay: float = 1e-4,
             seed: int = 0, eval_rounds: int = 4, out: str | os.PathLike | None = None,
             graph=None, device: str = "cpu", max_genes: int | None = None) -> PretrainResult:
    """Pretrain the encoder by masked PPI-edge reconstruction on the cohort's training cells.

    Each step hides ``mask_fraction`` of the PPI pairs from message passing, scores them against as
    many sampled non-edges (BCE) and adds ``degree_weight`` x the node-degree MSE. After training, the
    edge AUC and AP are measured on the held-out (val + test) cells with fresh seeded masks.

    Parameters
    ----------
    cohort
        Cohort whose ``kg`` is the gene graph; its train split is trained on.
    config
        :class:`celltosg.model.FMConfig` (any head is dropped).
    out
        Where to write the checkpoint (loadable by ``finetune(pretrained=...)`` and ``embed``).
    graph
        Precomputed GraphInputs of ``cohort.kg`` (default: frozen text and sequence encoders).
    device
        Torch device to train on (``"cpu"``, ``"cuda"``).
    max_genes
        Read at most this many genes, the most variable of the train split (0 = all; None: the recipe's);
        fine-tuning from the checkpoint reads the same genes.

    Returns
    -------
    PretrainResult with ``metrics`` = {auc, ap, n_train, n_held_out, epochs, seed}.
    """
    import torch

    from celltosg.model import CellTOSGFM, EdgeMaskingObjective, FMConfig

    reuse_freed_memory()
    cohort = model_genes(cohort, max_genes=max_genes)
    config = dataclasses.replace(config or FMConfig(), n_classes=0)
    if graph is None:
        graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    X_train, X_held = split_tensor(cohort, "train"), held_out_tensor(cohort)
    torch.manual_seed(seed)
    model = CellTOSGFM(graph, config)
    if config.standardize:
        model.set_input_scaling(*input_scaling(X_train))
    objective = EdgeMaskingObjective(graph, config.hidden, mask_ratio=mask_fraction,
                                     degree_weight=degree_weight, seed=seed)
    model.to(device)
    objective.to(device)
    params = [*model.parameters(), *objective.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    history = []
    log.info("pretraining starts: %d training cells, %d graph nodes, %d epochs", len(X_train), cohort.kg.n_nodes,
             epochs)
    for epoch in progress(range(epochs), description="pretraining"):
        model.train()
        objective.train()
        generator = epoch_generator(seed, epoch)
        totals = np.zeros(3)
        steps = 0
        for idx in batches(len(X_train), batch_size, generator):
            optimizer.zero_grad()
            step = objective(model, X_train[idx].to(device), generator=generator)
            step.loss.backward()
            optimizer.step()
            totals += [step.loss.item(), step.edge_loss.item(), step.degree_loss.item()]
            steps += 1
        loss, edge_loss, degree_loss = (float(v) for v in totals / max(steps, 1))
        history.append({"epoch": epoch, "loss": loss, "edge_loss": edge_loss, "degree_loss": degree_loss})
        log.info("epoch %d: loss %.4f (edge %.4f, degree %.4f)", epoch, loss, edge_loss, degree_loss)
    held = evaluate_edges(model, objective, X_held, seed=seed, rounds=eval_rounds, batch_size=batch_size)
    metrics = {**held, "n_train": len(X_train), "n_held_out": len(X_held), "epochs": epochs, "seed": seed,
               "mask_fraction": mask_fraction, "masked_pairs_per_step": objective.n_masked}
    log.info("held-out cells: edge AUC %.4f, AP %.4f", held["auc"], held["ap"])
    checkpoint = None
    if out is not None:
        payload = model_payload(model, config, graph, cohort.kg, label_mapping={}, task="pretrain")
        checkpoint = save_checkpoint(out, {**payload, "kind": "pretrain", "metrics": metrics,
                                           "history": history, "objective_state": cpu_state(objective)})
    return PretrainResult(metrics, history, checkpoint)
