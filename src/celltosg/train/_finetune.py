"""Fine-tuning: class-weighted cross-entropy, selection and early stopping on validation, exact resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celltosg.errors import CheckpointError, SplitError
from celltosg.io_utils import atomic_file
from celltosg.loader import TASKS
from celltosg.train._checkpoint import load_checkpoint, model_payload, save_checkpoint
from celltosg.train._classify import ClassifierPlan, class_weights, predict_logits
from celltosg.train._data import CohortLike, MemorySplits, StreamSplits, check_labels, splits_of
from celltosg.train._ddp import launch
from celltosg.train._engine import FitSettings, fit
from celltosg.train._graph import build_graph_inputs, model_genes
from celltosg.train._memory import reuse_freed_memory
from celltosg.train._metrics import classification_metrics
from celltosg.train._skip_init import SKIP_INITS, init_skip_from_logreg

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STATE_FILE = "last.ckpt"
MODEL_FILE = "model.ckpt"
METRICS_FILE = "metrics.json"
LABELLED_TASKS = tuple(task for task in TASKS if task != "pretrain")


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
    data: MemorySplits | StreamSplits
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
            skip_init: str = "logreg", stream: bool | None = None, buffer_size: int = 4096) -> _Setup:
    """Model, split data (in memory or streamed, :func:`~celltosg.train._data.splits_of`) and class
    weights for fine-tuning ``cohort``.

    ``skip_init="logreg"`` starts the skip path at a logistic regression fit on train (C by validation
    macro-F1, :func:`init_skip_from_logreg`; a streamed cohort fits it on a bounded seeded sample);
    ``"random"`` keeps PyTorch's initialisation.
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
    data = splits_of(cohort, ("train", "val", "test"), stream=stream, buffer_size=buffer_size, seed=seed)
    for split in ("train", "val", "test"):
        check_labels(label_mapping, data.labels(split), split)
    payload = load_checkpoint(pretrained) if pretrained is not None else None
    if payload is not None:
        graph = GraphInputs.from_dict(payload["graph"])
        config = _pretrained_config(FMConfig.from_dict(payload["config"]), config)
    config = dataclasses.replace(config or FMConfig(), n_classes=len(label_mapping))
    if graph is None:
        graph = build_graph_inputs(cohort.kg, seq_dim=config.seq_dim)
    torch.manual_seed(seed)
    model = CellTOSGFM(graph, config)
    if payload is not None:
        _load_pretrained(model, payload, cohort.kg, pretrained)
    if config.standardize:
        model.set_input_scaling(*data.scaling())
    skip_c = init_skip_from_logreg(model, data.sample("train", seed), data.sample("val", seed),
                                   len(label_mapping), seed) if skip_init == "logreg" else None
    if freeze_encoder:
        frozen = encoder_parameter_names(model)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name not in frozen)
    model.to(device)
    weights = torch.from_numpy(class_weights(data.labels("train"), len(label_mapping))).to(device)
    run = {"task": task, "seed": int(seed), "freeze_encoder": bool(freeze_encoder),
           "pretrained": str(pretrained) if pretrained is not None else None,
           "label_mapping": label_mapping, "config": config.to_dict(), "skip_init": skip_init, "skip_C": skip_c}
    return _Setup(model, config, graph, data, weights, label_mapping, run)


def write_outputs(setup: _Setup, best_state: dict, *, out_dir: Path, kg, batch_size: int,
                  summary: dict[str, Any], write: bool = True) -> FinetuneResult:
    """Evaluate the selected model on test and write ``model.ckpt`` and ``metrics.json`` (when ``write``)."""
    setup.model.load_state_dict(best_state)
    y_test = setup.data.labels("test")
    pred = predict_logits(setup.model, setup.data.inputs("test", batch_size)).argmax(1).numpy()
    metrics = {"task": setup.run["task"], "test": classification_metrics(y_test, pred, setup.label_mapping),
               **summary}
    checkpoint = out_dir / MODEL_FILE
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        payload = model_payload(setup.model, setup.config, setup.graph, kg, label_mapping=setup.label_mapping,
                                task=setup.run["task"])
        save_checkpoint(checkpoint, {**payload, "kind": "finetune", "metrics": metrics})
        with atomic_file(out_dir / METRICS_FILE) as tmp:
            tmp.write_text(json.dumps(metrics, indent=2))
    log.info("test accuracy %.4f, macro-F1 %.4f (best epoch %d)", metrics["test"]["accuracy"],
             metrics["test"]["macro_f1"], summary["best_epoch"])
    return FinetuneResult(metrics, checkpoint, out_dir, written=write)


def finetune(cohort: CohortLike, *, task: str, out_dir: str | os.PathLike, config=None,
             pretrained: str | os.PathLike | None = None, freeze_encoder: bool = False, epochs: int = 30,
             batch_size: int = 32, lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 5,
             seed: int = 0, resume: bool = True, graph=None, device: str = "cpu", devices: int = 1,
             strategy: str = "ddp", skip_init: str | None = None, stream: bool | None = None,
             buffer_size: int = 4096, callbacks: tuple = (), max_genes: int | None = None) -> FinetuneResult:
    """Fine-tune CellTOSG-FM on a cohort's labels and report test metrics.

    One AdamW optimiser and cosine schedule for the whole run; class-weighted cross-entropy on train;
    after every epoch the model is scored on the validation split (macro-F1, ties by loss), the best
    state is kept and training stops after ``patience`` epochs without improvement. The test split is
    used once, at the end, on the selected model. ``out_dir/last.ckpt`` holds the full training state
    (model, optimiser, scheduler, RNG, epoch, best state) after every epoch; with ``resume`` an
    interrupted run continues from it and ends with the same metrics as an uninterrupted one. The loop
    is the training engine's (:func:`celltosg.train._engine.fit`).

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
        ``devices > 1`` trains with PyTorch DDP in as many spawned CPU processes (``strategy="ddp"``,
        gloo); a calling script needs an ``if __name__ == "__main__":`` guard. No resume under DDP.
    stream
        Read training batches from the store through the loader's streaming datamodule (True), hold the
        splits in memory (False), or decide by size (None: a store-backed cohort over 1 GiB streams).
    buffer_size
        Rows of the streaming shuffle buffer.
    callbacks
        Objects with ``on_train_batch(batch)`` and / or ``on_fit_end(module, rank, world_size)`` hooks
        (batches are ``(x, y, rows)``); they must pickle when ``devices > 1``.
    max_genes
        Without ``pretrained``: read at most this many genes, the most variable of the train split
        (0 = all; None: the recipe's, :data:`celltosg.recipe.RECIPE`).
    """
    if task not in LABELLED_TASKS:
        raise SplitError(f"unknown task {task!r}; choose one of {list(LABELLED_TASKS)}")
    if strategy != "ddp":
        raise SplitError(f"unknown strategy {strategy!r}; use 'ddp'")
    cohort = model_genes(cohort, max_genes=max_genes, pretrained=pretrained)
    options = dict(task=task, config=config, pretrained=pretrained, freeze_encoder=freeze_encoder,
                   epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, patience=patience,
                   seed=seed, resume=resume, graph=graph, device=device, skip_init=skip_init, stream=stream,
                   buffer_size=buffer_size, callbacks=tuple(callbacks))
    out_dir = Path(out_dir)
    if devices > 1:
        if graph is None and pretrained is None:  # embed the node text once, not in every rank
            from celltosg.model import FMConfig

            options["graph"] = build_graph_inputs(cohort.kg, seq_dim=(config or FMConfig()).seq_dim)
        launch(_finetune_process, (cohort, out_dir, {**options, "device": "cpu"}), world_size=devices)
        metrics = json.loads((out_dir / METRICS_FILE).read_text())
        return FinetuneResult(metrics, out_dir / MODEL_FILE, out_dir)
    return _finetune_process(cohort, out_dir, options)


def _finetune_process(cohort: CohortLike, out_dir: Path, options: dict[str, Any]) -> FinetuneResult:
    """Fine-tuning in this process: the whole run, or one DDP rank's share (rank 0 writes the outputs)."""
    from celltosg.recipe import RECIPE
    from celltosg.train._ddp import distributed

    rank, world_size = distributed()
    o = options
    setup = prepare(cohort, task=o["task"], config=o["config"], pretrained=o["pretrained"],
                    freeze_encoder=o["freeze_encoder"], seed=o["seed"], graph=o["graph"], device=o["device"],
                    skip_init=o["skip_init"] or RECIPE.skip_init, stream=o["stream"], buffer_size=o["buffer_size"])
    setup.run.update(epochs=int(o["epochs"]), batch_size=int(o["batch_size"]), lr=float(o["lr"]),
                     weight_decay=float(o["weight_decay"]), patience=int(o["patience"]))
    batch_size = int(o["batch_size"])
    plan = ClassifierPlan(setup.model, setup.weights,
                          (lambda: setup.data.inputs("val", batch_size), setup.data.labels("val")))
    settings = FitSettings(epochs=int(o["epochs"]), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]),
                           patience=int(o["patience"]), seed=int(o["seed"]), device=o["device"],
                           description="fine-tuning")
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    fitted = fit(plan, setup.data.train_batches(batch_size, rank=rank, world_size=world_size), settings,
                 state_file=out_dir / STATE_FILE, resume=o["resume"], run=setup.run, callbacks=o["callbacks"])
    summary = {"best_epoch": fitted.best_epoch, "epochs_run": len(fitted.history), "val": fitted.best_score,
               "history": fitted.history, "seed": o["seed"], "pretrained": setup.run["pretrained"],
               "freeze_encoder": o["freeze_encoder"], "n_train": len(setup.data.labels("train")),
               "n_val": len(setup.data.labels("val"))}
    if world_size > 1:
        summary.update(devices=world_size, strategy="ddp")
    return write_outputs(setup, fitted.best_state, out_dir=out_dir, kg=cohort.kg, batch_size=batch_size,
                         summary=summary, write=rank == 0)
