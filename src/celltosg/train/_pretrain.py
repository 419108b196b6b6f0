"""Edge-masking pretraining of the CellTOSG-FM encoder, evaluated on held-out cells."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celltosg.errors import SplitError
from celltosg.train._checkpoint import model_payload, save_checkpoint
from celltosg.train._data import CohortLike, splits_of
from celltosg.train._engine import FitSettings, cpu_state, epoch_generator, fit
from celltosg.train._graph import build_graph_inputs, model_genes

log = logging.getLogger(__name__)

EVAL_STREAM = 1_000_003  # epoch index of the generator that draws the evaluation masks


@dataclass
class PretrainResult:
    """Outcome of :func:`pretrain`: held-out ``metrics`` (edge AUC / AP), per-epoch ``history``, checkpoint."""

    metrics: dict[str, Any]
    history: list[dict[str, float]]
    checkpoint: Path | None


class EdgeMaskingPlan:
    """The engine's plan for pretraining: masked PPI-edge reconstruction, no validation (last state kept).

    ``module`` holds the model and the objective, so both are optimised, saved and resumed together.
    """

    def __init__(self, model, objective):
        import torch

        self.model, self.objective = model, objective
        self.module = torch.nn.ModuleDict({"model": model, "objective": objective})

    def step(self, model, batch, generator):
        out = self.objective(self.model, batch[0], generator=generator)
        return out.loss, {"edge_loss": out.edge_loss.item(), "degree_loss": out.degree_loss.item()}, len(batch[0])

    def validate(self) -> None:
        return None


def evaluate_edges(model, objective, batches, *, seed: int, rounds: int) -> dict[str, float]:
    """Edge AUC / AP on the cells of ``batches()`` (fresh (b, n_genes) batches per call) over ``rounds``
    seeded masks, in eval mode.

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
            for x in batches():
                generator.set_state(state)  # the same mask for every batch of this round
                out = objective(model, x.to(device), generator=generator)
                logits.append(out.logits.flatten().cpu())
                labels.append(out.labels.flatten().cpu())
    return edge_metrics(torch.cat(logits), torch.cat(labels))


def pretrain(cohort: CohortLike, *, config=None, epochs: int = 5, batch_size: int = 16, lr: float = 3e-3,
             mask_fraction: float = 0.05, degree_weight: float = 0.1, weight_decay: float = 1e-4,
             seed: int = 0, eval_rounds: int = 4, out: str | os.PathLike | None = None,
             graph=None, device: str = "cpu", stream: bool | None = None,
             max_genes: int | None = None) -> PretrainResult:
    """Pretrain the encoder by masked PPI-edge reconstruction on the cohort's training cells.

    Each step hides ``mask_fraction`` of the PPI pairs from message passing, scores them against as
    many sampled non-edges (BCE) and adds ``degree_weight`` x the node-degree MSE. After training, the
    edge AUC and AP are measured on the held-out (val + test) cells with fresh seeded masks. The loop is
    the training engine's (AdamW, no schedule, no selection).

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
    stream
        Stream the cohort from its store (see :func:`celltosg.train.finetune`); None decides by size.
    max_genes
        Read at most this many genes, the most variable of the train split (0 = all; None: the recipe's);
        fine-tuning from the checkpoint reads the same genes.

    Returns
    -------
    PretrainResult with ``metrics`` = {auc, ap, n_train, n_held_out, epochs, seed}.
    """
    import torch

    from celltosg.model import CellTOSGFM, EdgeMaskingObjective, FMConfig

    cohort = model_genes(cohort, max_genes=max_genes)
    config = dataclasses.replace(config or FMConfig(), n_classes=0)
    if graph is None:
        graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    held_out = tuple(s for s in ("val", "test") if s in set(cohort.obs["split"]))
    if not held_out:
        raise SplitError("the cohort has no val or test cells to evaluate on; make a split with held-out cells")
    data = splits_of(cohort, ("train", *held_out), stream=stream, labelled=False, seed=seed)
    torch.manual_seed(seed)
    model = CellTOSGFM(graph, config)
    if config.standardize:
        model.set_input_scaling(*data.scaling())
    objective = EdgeMaskingObjective(graph, config.hidden, mask_ratio=mask_fraction,
                                     degree_weight=degree_weight, seed=seed)
    n_train = len(data.labels("train"))
    log.info("pretraining starts: %d training cells, %d graph nodes, %d epochs", n_train, cohort.kg.n_nodes, epochs)
    settings = FitSettings(epochs=epochs, lr=lr, weight_decay=weight_decay, cosine=False, seed=seed, device=device,
                           description="pretraining")
    fitted = fit(EdgeMaskingPlan(model, objective), data.train_batches(batch_size), settings)
    history = [{"epoch": h["epoch"], **{k.removeprefix("train_"): v for k, v in h.items() if k != "epoch"}}
               for h in fitted.history]

    def held_batches():
        for split in held_out:
            yield from data.inputs(split, batch_size)

    held = evaluate_edges(model, objective, held_batches, seed=seed, rounds=eval_rounds)
    n_held = sum(len(data.labels(s)) for s in held_out)
    metrics = {**held, "n_train": n_train, "n_held_out": n_held, "epochs": epochs, "seed": seed,
               "mask_fraction": mask_fraction, "masked_pairs_per_step": objective.n_masked}
    log.info("held-out cells: edge AUC %.4f, AP %.4f", held["auc"], held["ap"])
    checkpoint = None
    if out is not None:
        payload = model_payload(model, config, graph, cohort.kg, label_mapping={}, task="pretrain")
        checkpoint = save_checkpoint(out, {**payload, "kind": "pretrain", "metrics": metrics,
                                           "history": history, "objective_state": cpu_state(objective)})
    return PretrainResult(metrics, history, checkpoint)
