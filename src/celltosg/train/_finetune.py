"""Fine-tuning: class-weighted cross-entropy, selection and early stopping on validation, exact resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from celltosg.errors import CheckpointError, SplitError
from celltosg.io_utils import atomic_file
from celltosg.progress import progress
from celltosg.train._checkpoint import load_checkpoint, model_payload, save_checkpoint
from celltosg.train._data import CohortLike, batches, check_labels, class_weights, input_scaling, split_tensor
from celltosg.train._graph import build_graph_inputs, model_genes
from celltosg.train._loop import better, cpu_state, epoch_generator, evaluate, predict_logits
from celltosg.train._memory import reuse_freed_memory
from celltosg.train._metrics import classification_metrics
from celltosg.train._skip_init import SKIP_INITS, init_skip_from_logreg

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STATE_FILE = "last.ckpt"
MODEL_FILE = "model.ckpt"
METRICS_FILE = "metrics.json"
TASKS = ("cell_type", "disease", "sex")


@dataclass
class FinetuneResult:
    """Outcome of :func:`finetune`: test ``metrics`` (also in ``out_dir/metrics.json``) and the best model.

    ``written`` is False on the DDP ranks other than 0, which write nothing.
    """

    metrics: dict[str, Any]
    checkpoint: Path
    out_dir: Path
    written: bool = True


@dataclass
class _Setup:
    model: Any
    config: Any
    graph: Any
    data: dict[str, tuple[torch.Tensor, np.ndarray]]
    weights: torch.Tensor
    label_mapping: dict[str, int]
    run: dict[str, Any]


TRAINABLE_WHEN_FROZEN = ("readout.", "head.", "skip.")
FRESH_WHEN_LOADED = (*TRAINABLE_WHEN_FROZEN, "input_")


def encoder_parameter_names(model) -> set[str]:
    """Names of the node-encoder parameters (fusion and message passing; not the readout, head or skip)."""
    return {name for name, _ in model.named_parameters() if not name.startswith(TRAINABLE_WHEN_FROZEN)}


def _load_pretrained(model, payload: dict, kg, path) -> None:
    """Copy a pretrained encoder (fusion and message passing) into ``model``; the genes must be the
    cohort's. The readout, task head, skip path and input standardisation stay as ``model`` has them
    (fresh), so an encoder pretrained with either readout loads into a model with either readout."""
    genes = [str(i) for i in kg.nodes["node_id"].to_numpy()[: kg.n_rna]]
    if payload["rna_node_ids"] != genes:
        raise CheckpointError(f"pretrained checkpoint {path} was trained on {len(payload['rna_node_ids'])} "
                              f"genes that differ from this cohort's {len(genes)}; pretrain on a cohort with "
                              "the same genes (the same store) or fine-tune without --pretrained")
    encoder = {k: v for k, v in payload["state_dict"].items() if not k.startswith(FRESH_WHEN_LOADED)}
    try:
        missing, unexpected = model.load_state_dict(encoder, strict=False)
    except RuntimeError as error:
        raise CheckpointError(f"pretrained checkpoint {path} does not fit this model ({error}); "
                              "re-create it with this celltosg version") from error
    missing = [k for k in missing if not k.startswith(FRESH_WHEN_LOADED)]
    if missing or unexpected:
        raise CheckpointError(f"pretrained checkpoint {path} does not fit this model (missing {missing[:5]}, "
                              f"unexpected {list(unexpected)[:5]}); re-create it with this celltosg version")


def _pretrained_config(encoder, requested):
    """The pretrained ``encoder`` config with the readout-side settings of ``requested`` (when given)."""
    if requested is None:
        return encoder
    head_side = ("readout", "readout_rank", "readout_dim", "skip", "standardize", "clip", "dropout")
    return dataclasses.replace(encoder, **{name: getattr(requested, name) for name in head_side})


def prepare(cohort: CohortLike, *, task: str, config=None, pretrained: str | os.PathLike | None = None,
            freeze_encoder: bool = False, seed: int = 0, graph=None, device: str = "cpu",
            skip_init: str = "logreg") -> _Setup:
    """Model, data tensors and class weights for fine-tuning ``cohort`` (shared by every loop).

    ``skip_init="logreg"`` starts the skip path at a logistic regression fit on train (C by validation
    macro-F1, :func:`init_skip_from_logreg`); ``"random"`` keeps PyTorch's initialisation.
    """
    import torch

    from celltosg.model import CellTOSGFM, FMConfig, GraphInputs

    if skip_init not in SKIP_INITS:
        raise SplitError(f"unknown skip_init {skip_init!r}; choose one of {list(SKIP_INITS)}")
    reuse_freed_memory()
    label_mapping = dict(cohort.label_mapping)
    if len(label_mapping) < 2:
        raise SplitError(f"task {task!r} has {len(label_mapping)} class(es) in this cohort; fine-tuning needs "
                         "at least two: widen the query")
    data = {}
    for split in ("train", "val", "test"):
        y = np.asarray(cohort.labels(split), dtype=np.int64)
        check_labels(label_mapping, y, split)
        data[split] = (split_tensor(cohort, split), y)
    payload = load_checkpoint(pretrained) if pretrained is not None else None
    if payload is not None:
        graph = GraphInputs(**payload["graph"])
        config = _pretrained_config(FMConfig.from_dict(payload["config"]), config)
    config = dataclasses.replace(config or FMConfig(), n_classes=len(label_mapping))
    if graph is None:
        graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    torch.manual_seed(seed)
    model = CellTOSGFM(graph, config)
    if payload is not None:
        _load_pretrained(model, payload, cohort.kg, pretrained)
    if config.standardize:
        model.set_input_scaling(*input_scaling(data["train"][0]))
    skip_c = init_skip_from_logreg(model, data["train"], data["val"], len(label_mapping), seed) \
        if skip_init == "logreg" else None
    if freeze_encoder:
        frozen = encoder_parameter_names(model)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name not in frozen)
    model.to(device)
    weights = torch.from_numpy(class_weights(data["train"][1], len(label_mapping))).to(device)
    run = {"task": task, "seed": int(seed), "freeze_encoder": bool(freeze_encoder),
           "pretrained": str(pretrained) if pretrained is not None else None,
           "label_mapping": label_mapping, "config": config.to_dict(), "skip_init": skip_init, "skip_C": skip_c}
    return _Setup(model, config, graph, data, weights, label_mapping, run)


def make_optimizer(model, *, lr: float, weight_decay: float, epochs: int):
    """AdamW over the trainable parameters with a cosine learning-rate schedule over ``epochs``."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))


def train_one_epoch(model, optimizer, X: torch.Tensor, y: np.ndarray, weights: torch.Tensor, *,
                    batch_size: int, generator) -> float:
    """One pass over shuffled mini-batches of (X (n, n_genes), y (n,)); returns the mean training loss."""
    import torch

    model.train()
    target = torch.from_numpy(y)
    device = weights.device
    total, seen = 0.0, 0
    for idx in batches(len(X), batch_size, generator):
        optimizer.zero_grad()
        logits = model(X[idx].to(device))["logits"]
        loss = torch.nn.functional.cross_entropy(logits, target[idx].to(device), weight=weights)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def write_outputs(setup: _Setup, best_state: dict, *, out_dir: Path, kg, batch_size: int,
                  summary: dict[str, Any], write: bool = True) -> FinetuneResult:
    """Evaluate the selected model on test and write ``model.ckpt`` and ``metrics.json`` (when ``write``)."""
    setup.model.load_state_dict(best_state)
    X_test, y_test = setup.data["test"]
    pred = predict_logits(setup.model, X_test, batch_size).argmax(1).numpy()
    metrics = {"task": setup.run["task"], "test": classification_metrics(y_test, pred, setup.label_mapping),
               **summary}
    checkpoint = out_dir / MODEL_FILE
    if write:
        payload = model_payload(setup.model, setup.config, setup.graph, kg, label_mapping=setup.label_mapping,
                                task=setup.run["task"])
        save_checkpoint(checkpoint, {**payload, "kind": "finetune", "metrics": metrics})
        with atomic_file(out_dir / METRICS_FILE) as tmp:
            tmp.write_text(json.dumps(metrics, indent=2))
    log.info("test accuracy %.4f, macro-F1 %.4f (best epoch %d)", metrics["test"]["accuracy"],
             metrics["test"]["macro_f1"], summary["best_epoch"])
    return FinetuneResult(metrics, checkpoint, out_dir, written=write)


def _resume_state(path: Path, run: dict) -> dict | None:
    if not path.is_file():
        return None
    state = load_checkpoint(path, required=("run", "model", "optimizer", "scheduler", "rng", "epoch", "best", "finished"))
    if state["run"] != run:
        changed = sorted(k for k in run if state["run"].get(k) != run[k])
        raise CheckpointError(f"{path} belongs to a run with other settings ({changed}); use another --out "
                              "directory, the same settings, or resume=False to start over")
    return state


def finetune(cohort: CohortLike, *, task: str, out_dir: str | os.PathLike, config=None,
             pretrained: str | os.PathLike | None = None, freeze_encoder: bool = False, epochs: int = 30,
             batch_size: int = 32, lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 5,
             seed: int = 0, resume: bool = True, graph=None, device: str = "cpu", devices: int = 1,
             strategy: str = "ddp", skip_init: str | None = None, max_genes: int | None = None) -> FinetuneResult:
    """Fine-tune CellTOSG-FM on a cohort's labels and report test metrics.

    One AdamW optimiser and cosine schedule for the whole run; class-weighted cross-entropy on train;
    after every epoch the model is scored on the validation split (macro-F1, ties by loss), the best
    state is kept and training stops after ``patience`` epochs without improvement. The test split is
    used once, at the end, on the selected model. ``out_dir/last.ckpt`` holds the full training state
    (model, optimiser, scheduler, RNG, epoch, best state) after every epoch; with ``resume`` an
    interrupted run continues from it and ends with the same metrics as an uninterrupted one.

    Parameters
    ----------
    cohort
        A :class:`celltosg.loader.Cohort` (or :class:`InMemoryCohort`) loaded for ``task``.
    pretrained
        Checkpoint of :func:`pretrain` whose encoder initialises the model; the model reads that
        checkpoint's genes (the cohort must measure them).
    freeze_encoder
        Train only the readout and task head.
    skip_init
        ``"logreg"``: the skip path starts at a class-balanced L2 logistic regression on the standardised
        train split (C chosen on validation), so the graph path learns a residual; ``"random"``: PyTorch's;
        None: the recipe's (:data:`celltosg.recipe.RECIPE`).
    device
        Torch device of the single-process loop (``"cpu"``, ``"cuda"``); exact resume is guaranteed on CPU.
    devices, strategy
        ``devices > 1`` trains with PyTorch DDP through Lightning on CPU (``strategy="ddp"``).
    max_genes
        Without ``pretrained``: read at most this many genes, the most variable of the train split
        (0 = all; None: the recipe's, :data:`celltosg.recipe.RECIPE`).
    """
    import torch

    from celltosg.recipe import RECIPE

    if task not in TASKS:
        raise SplitError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    cohort = model_genes(cohort, max_genes=max_genes, pretrained=pretrained)
    out_dir = Path(out_dir)
    setup = prepare(cohort, task=task, config=config, pretrained=pretrained, freeze_encoder=freeze_encoder,
                    seed=seed, graph=graph, device=device if devices == 1 else "cpu",
                    skip_init=skip_init or RECIPE.skip_init)
    setup.run.update(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                     weight_decay=float(weight_decay), patience=int(patience))
    if devices > 1:
        from celltosg.train._distributed import finetune_distributed

        return finetune_distributed(setup, kg=cohort.kg, out_dir=out_dir, devices=devices, strategy=strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = setup.model
    optimizer, scheduler = make_optimizer(model, lr=lr, weight_decay=weight_decay, epochs=epochs)
    state = _resume_state(out_dir / STATE_FILE, setup.run) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start, best, stale, history = state["epoch"], state["best"], state["stale"], state["history"]
        log.info("resuming from %s at epoch %d", out_dir / STATE_FILE, start)
    else:
        start, stale, history = 0, 0, []
        best = {"score": None, "epoch": -1, "state_dict": None}
    X_train, y_train = setup.data["train"]
    X_val, y_val = setup.data["val"]
    remaining = range(start, start if state is not None and state["finished"] else epochs)
    for epoch in progress(remaining, description="fine-tuning"):
        train_loss = train_one_epoch(model, optimizer, X_train, y_train, setup.weights,
                                     batch_size=batch_size, generator=epoch_generator(seed, epoch))
        scheduler.step()
        score = evaluate(model, X_val, y_val, setup.weights, batch_size)
        history.append({"epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in score.items()}})
        log.info("epoch %d: train loss %.4f, val loss %.4f, val macro-F1 %.4f", epoch, train_loss,
                 score["loss"], score["macro_f1"])
        if better(score, best["score"]):
            best = {"score": score, "epoch": epoch, "state_dict": cpu_state(model)}
            stale = 0
        else:
            stale += 1
        save_checkpoint(out_dir / STATE_FILE, {
            "run": setup.run, "model": cpu_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "epoch": epoch + 1,
            "best": best, "stale": stale, "history": history,
            "finished": stale >= patience or epoch + 1 == epochs})
        if stale >= patience:
            log.info("early stopping after epoch %d: no validation improvement for %d epochs", epoch, patience)
            break
    if best["state_dict"] is None:
        raise SplitError("no epoch was trained; give epochs >= 1")
    summary = {"best_epoch": best["epoch"], "epochs_run": len(history), "val": best["score"],
               "history": history, "seed": seed, "pretrained": setup.run["pretrained"],
               "freeze_encoder": freeze_encoder, "n_train": len(y_train), "n_val": len(y_val)}
    return write_outputs(setup, best["state_dict"], out_dir=out_dir, kg=cohort.kg, batch_size=batch_size,
                         summary=summary)
