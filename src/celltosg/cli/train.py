"""`celltosg pretrain | finetune | predict | embed`: train CellTOSG-FM on a store and apply it."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app
from celltosg.recipe import RECIPE as R

WHERE_HELP = "FIELD=VALUE condition selecting the cohort; repeat it (the same field twice means any of)."
SPLIT_HELP = "Split the cohort by 'donor' (honest estimates) or by 'cell' (needed for a single-donor store)."


STANDARDIZE_HELP = "Standardise each gene by the train split's mean and sd (clipped); stored in the checkpoint."
REVERSE_HELP = "Also pass messages protein -> RNA after the global layers."
MAX_GENES_HELP = ("Read at most this many genes, the most variable of the train split, and their proteins "
                  "(0 = every measured gene; a step's cost grows with the graph's nodes).")


def _format_metrics(metrics: dict) -> str:
    test = metrics["test"]
    width = max(len(name) for name in test["labels"])
    lines = [f"test cells: {test['n']}   accuracy: {test['accuracy']:.4f}   macro-F1: {test['macro_f1']:.4f}   "
             f"(best validation epoch {metrics['best_epoch']} of {metrics['epochs_run']})", "per-class F1:"]
    lines += [f"  {name:<{width}}  {f1:.4f}" for name, f1 in test["per_class_f1"].items()]
    lines.append("confusion matrix (rows = true, columns = predicted, in the order above):")
    lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in test["confusion_matrix"]]
    return "\n".join(lines)


@app.command("pretrain")
def pretrain_command(
    store: Path = typer.Argument(..., help="TOSG store directory."),
    out: Path = typer.Option(..., "--out", help="Checkpoint file to write (e.g. pretrained.ckpt)."),
    where: list[str] = typer.Option([], "--where", "-w", help=WHERE_HELP),
    split_by: str = typer.Option("donor", "--split-by", help=SPLIT_HELP),
    epochs: int = typer.Option(R.pretrain_epochs, "--epochs", help="Passes over the training cells."),
    batch_size: int = typer.Option(R.pretrain_batch_size, "--batch-size", help="Cells per step."),
    lr: float = typer.Option(R.pretrain_lr, "--lr", help="AdamW learning rate."),
    mask_fraction: float = typer.Option(R.mask_fraction, "--mask-fraction", help="Fraction of PPI pairs masked per step."),
    hidden: int = typer.Option(R.model["hidden"], "--hidden", help="Node embedding width."),
    layers: int = typer.Option(R.model["layers"], "--layers", help="Global message-passing layers."),
    conv: str = typer.Option("attention", "--conv", help="attention (fast), gat (exact), gcn or gin."),
    reverse_internal: bool = typer.Option(False, "--reverse-internal/--no-reverse-internal", help=REVERSE_HELP),
    standardize: bool = typer.Option(True, "--standardize/--no-standardize", help=STANDARDIZE_HELP),
    max_genes: int = typer.Option(R.max_genes, "--max-genes", min=0, help=MAX_GENES_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, initialisation, masks and batches."),
) -> None:
    """Pretrain the encoder by masked PPI-edge reconstruction; print held-out-cell edge AUC and AP."""
    from celltosg.fm import CellTOSGFM

    model = CellTOSGFM.from_store(store, task="pretrain", where=where, split_by=split_by, seed=seed, hidden=hidden,
                                  layers=layers, conv=conv, reverse_internal=reverse_internal, standardize=standardize)
    result = model.pretrain(out=out, epochs=epochs, batch_size=batch_size, lr=lr, mask_fraction=mask_fraction,
                            max_genes=max_genes)
    m = result.metrics
    typer.echo(f"held-out cells: {m['n_held_out']}   edge AUC: {m['auc']:.4f}   AP: {m['ap']:.4f}")
    typer.echo(f"checkpoint written to {result.checkpoint}")


@app.command("finetune")
def finetune_command(
    store: Path = typer.Argument(..., help="TOSG store directory."),
    task: str = typer.Option(..., "--task", help="cell_type, disease or sex."),
    out: Path = typer.Option(..., "--out", help="Output directory: model.ckpt, metrics.json, last.ckpt."),
    where: list[str] = typer.Option([], "--where", "-w", help=WHERE_HELP),
    pretrained: Path | None = typer.Option(None, "--pretrained", help="Checkpoint from `celltosg pretrain`."),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="Train only the readout and task head."),
    split_by: str = typer.Option("donor", "--split-by", help=SPLIT_HELP),
    epochs: int = typer.Option(R.epochs, "--epochs", help="Maximum passes over the training cells."),
    batch_size: int = typer.Option(R.batch_size, "--batch-size", help="Cells per step."),
    lr: float = typer.Option(R.lr, "--lr", help="AdamW learning rate (cosine schedule)."),
    patience: int = typer.Option(R.patience, "--patience", help="Stop after this many epochs without validation gain."),
    hidden: int = typer.Option(R.model["hidden"], "--hidden", help="Node embedding width (ignored with --pretrained)."),
    layers: int = typer.Option(R.model["layers"], "--layers",
                               help="Global message-passing layers (ignored with --pretrained)."),
    conv: str = typer.Option("attention", "--conv", help="attention, gat, gcn or gin (ignored with --pretrained)."),
    reverse_internal: bool = typer.Option(False, "--reverse-internal/--no-reverse-internal",
                                          help=REVERSE_HELP + " (ignored with --pretrained)."),
    message_passing: bool = typer.Option(True, "--message-passing/--no-message-passing",
                                         help="--no-message-passing: the ablation without graph layers."),
    readout: str = typer.Option(R.model["readout"], "--readout", help="per_node (keeps gene identity) or pool."),
    readout_rank: int = typer.Option(R.model["readout_rank"], "--readout-rank", help="Channels per node (per_node)."),
    readout_dim: int = typer.Option(R.model["readout_dim"], "--readout-dim", help="Cell embedding width."),
    skip: bool = typer.Option(R.model["skip"], "--skip/--no-skip", help="Linear skip path from the omic values "
                                                                        "to the logits."),
    standardize: bool = typer.Option(R.model["standardize"], "--standardize/--no-standardize", help=STANDARDIZE_HELP),
    skip_init: str = typer.Option(R.skip_init, "--skip-init", help="logreg (skip path starts at a logistic "
                                  "regression on train, C by validation) or random."),
    max_genes: int = typer.Option(R.max_genes, "--max-genes", min=0,
                                  help=MAX_GENES_HELP + " With --pretrained: the checkpoint's genes."),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, initialisation and batches."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/last.ckpt when present."),
    devices: int = typer.Option(1, "--devices", help="CPU processes; more than 1 trains with DDP (no resume)."),
    strategy: str = typer.Option("ddp", "--strategy", help="Distributed strategy when --devices > 1 (ddp: PyTorch DDP over gloo)."),
) -> None:
    """Fine-tune on a task; select on validation, report accuracy, macro-F1 and confusion matrix on test."""
    from celltosg.fm import CellTOSGFM

    model = CellTOSGFM.from_store(store, task=task, where=where, split_by=split_by, seed=seed, hidden=hidden,
                                  layers=layers, conv=conv, reverse_internal=reverse_internal,
                                  message_passing=message_passing, readout=readout, readout_rank=readout_rank,
                                  readout_dim=readout_dim, skip=skip, standardize=standardize)
    result = model.train(out_dir=out, pretrained=pretrained, freeze_encoder=freeze_encoder, epochs=epochs,
                         batch_size=batch_size, lr=lr, patience=patience, resume=resume, devices=devices,
                         strategy=strategy, skip_init=skip_init, max_genes=max_genes)
    if result.written:  # under DDP only rank 0 reports
        typer.echo(_format_metrics(result.metrics))
        typer.echo(f"model and metrics written to {out}")


def _apply(kind: str, checkpoint: Path, input_path: Path, out: Path, gene_column: str | None, force: bool,
           donor_key: str | None = None):
    from celltosg.errors import MalformedInputError
    from celltosg.fm import EMBEDDING_KEY, CellTOSGFM
    from celltosg.io_utils import atomic_file, read_h5ad
    from celltosg.train import write_result

    if input_path.suffix != ".h5ad" or not input_path.is_file():
        raise MalformedInputError(f"input {input_path} must be an existing .h5ad file")
    adata = read_h5ad(input_path)
    model = CellTOSGFM.load(checkpoint)
    if kind == "predict":
        model.predict(adata, gene_column=gene_column, force=force)
        donors = model.donor_calls(adata, donor_key) if donor_key is not None else None
        write_result(adata, out, obsm_key="celltosg_probabilities", obs_keys=("celltosg_label", "celltosg_probability"),
                     columns=adata.uns["celltosg"]["classes"])
        counts = adata.obs["celltosg_label"].value_counts()
        typer.echo("predicted: " + ", ".join(f"{k} ({v})" for k, v in counts.items()))
        if donors is not None:
            with atomic_file(out.with_suffix(".donors.csv")) as tmp:
                donors.to_csv(tmp, index=False)
            typer.echo(f"donor calls written to {out.with_suffix('.donors.csv')}")
    else:
        model.embed(adata, gene_column=gene_column, force=force)
        write_result(adata, out, obsm_key=EMBEDDING_KEY)
        typer.echo(f"{adata.n_obs} cell embeddings of width {adata.obsm[EMBEDDING_KEY].shape[1]}")
    report = adata.uns["celltosg"]
    typer.echo(f"gene mapping: {100 * report['input_mapping_rate']:.1f}% of {report['input_genes']} input genes "
               f"mapped; {100 * report['model_gene_coverage']:.1f}% of the model's {report['model_genes']} "
               "genes covered")
    typer.echo(f"written to {out}")


@app.command("predict")
def predict_command(
    checkpoint: Path = typer.Argument(..., help="model.ckpt from `celltosg finetune`."),
    input_path: Path = typer.Argument(..., metavar="INPUT.h5ad", help="AnnData with cells x genes."),
    out: Path = typer.Option(..., "--out", help="Output .h5ad (labels in obs, probabilities in obsm) or .csv."),
    gene_column: str | None = typer.Option(None, "--gene-column", help="var column with gene ids (default: var names)."),
    force: bool = typer.Option(False, "--force", help="Predict even when under half the model's genes are present."),
    donor_key: str | None = typer.Option(None, "--donor-key", help="obs column of donor ids: also write "
                                         "OUT.donors.csv (per donor: mean class probabilities, called class, cells)."),
) -> None:
    """Predict labels and class probabilities for the cells of an AnnData."""
    _apply("predict", checkpoint, input_path, out, gene_column, force, donor_key)


@app.command("embed")
def embed_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint from `celltosg pretrain` or `celltosg finetune`."),
    input_path: Path = typer.Argument(..., metavar="INPUT.h5ad", help="AnnData with cells x genes."),
    out: Path = typer.Option(..., "--out", help="Output .h5ad (embeddings in obsm['X_celltosg']) or .csv."),
    gene_column: str | None = typer.Option(None, "--gene-column", help="var column with gene ids (default: var names)."),
    force: bool = typer.Option(False, "--force", help="Embed even when under half the model's genes are present."),
) -> None:
    """Write the cell embeddings of a checkpoint's encoder for the cells of an AnnData."""
    _apply("embed", checkpoint, input_path, out, gene_column, force)
