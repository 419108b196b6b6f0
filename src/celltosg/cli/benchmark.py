"""`celltosg benchmark`: every model on the same splits, genes and normalisation; tables and a figure."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app


@app.command()
def benchmark(
    store: str | None = typer.Argument(None, help="A TOSG store directory, an .h5ad file of log-normalised values "
                                                 "(split by cell), 'pbmc68k' for scanpy's embedded PBMC cells, "
                                                 "or a directory written by --save-splits."),
    task: str = typer.Option("cell_type", "--task", help="cell_type or disease (cases against normal controls)."),
    where: list[str] = typer.Option([], "--where", help="Query condition FIELD=VALUE; repeat for more "
                                                        "(the same field twice means either value)."),
    models: str = typer.Option("all", "--models", help="'all' or comma-separated model names "
                                                       "(celltosg benchmark --list-models shows them)."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Number of seeds (0..N-1): one split and one fit per seed."),
    out: Path = typer.Option(Path("benchmark_results"), "--out", help="Directory for results.csv/md/png."),
    split_by: str = typer.Option("donor", "--split-by", help="donor or cell (stores only; files are split by cell)."),
    label_key: str = typer.Option("cell_type", "--label-key", help="Label column of an .h5ad input."),
    correction: str | None = typer.Option(None, "--correction", help="Batch correction of store cohorts: "
                                                                     "combat_seq or combat (default none)."),
    quick: bool = typer.Option(False, "--quick", help="Few epochs: a smoke run, not a measurement."),
    max_epochs: int | None = typer.Option(None, "--max-epochs", min=1, help="Cap the training epochs of every "
                                                                            "torch model (MLP, GNN, FM)."),
    budget: int = typer.Option(4, "--budget", min=1, max=4, help="Configurations tried on validation data per "
                                                                 "model (the same for every model)."),
    list_models: bool = typer.Option(False, "--list-models", help="Print the model names and exit."),
    save_splits_to: Path | None = typer.Option(None, "--save-splits", help="Write the seeds' splits (values, "
                                               "labels, graph, node features) to this directory and exit; "
                                               "pass it as STORE to run on exactly those splits elsewhere."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: torch's)."),
    merge: list[Path] = typer.Option([], "--merge", help="Instead of training: combine these results.csv files "
                                                         "(repeatable) into one report in --out."),
    title: str | None = typer.Option(None, "--title", help="Title of results.md."),
    partial_csv: Path | None = typer.Option(None, "--partial-csv", help="Also rewrite the rows so far to this "
                                                                         "CSV after every model."),
) -> None:
    """Train and test every model on the same splits; write results.csv, results.md and results.png."""
    from celltosg.evaluation import (
        PBMC68K,
        anndata_splits,
        is_saved_splits,
        merge_results,
        model_specs,
        pbmc68k_splits,
        run_benchmark,
        save_splits,
        saved_splits,
        store_splits,
        write_results,
    )
    from celltosg.loader import parse_where

    specs = model_specs(models.split(",") if models != "all" else "all", quick=quick, budget=budget,
                        max_epochs=max_epochs)
    if list_models:
        for spec in specs:
            typer.echo(f"{spec.name}\t{spec.description}")
        raise typer.Exit(0)
    if merge:
        paths = write_results(merge_results(merge), out, title=title or "celltosg benchmark",
                              notes=f"Merged from {', '.join(str(p) for p in merge)}.")
        typer.echo(f"wrote {paths['csv']}, {paths['md']}, {paths['png']}")
        raise typer.Exit(0)
    if store is None:
        raise typer.BadParameter("give STORE (a store directory, an .h5ad file or 'pbmc68k')", param_hint="STORE")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if is_saved_splits(store):
        make = saved_splits(store)
    elif store == PBMC68K:
        make = pbmc68k_splits()
    elif store.endswith(".h5ad"):
        make = anndata_splits(store, label_key=label_key, task=task)
    else:
        make = store_splits(store, parse_where(where), task=task, split_by=split_by, correction_method=correction)
    if save_splits_to is not None:
        typer.echo(f"wrote {save_splits(make, list(range(seeds)), save_splits_to)}")
        raise typer.Exit(0)
    results = run_benchmark(make, specs, seeds=list(range(seeds)), task=task, partial_csv=partial_csv)
    paths = write_results(results, out, title=title or f"celltosg benchmark: {task} on {store}", notes=f"Conditions: {parse_where(where) or 'none'}; "
                          f"models: {models}; quick: {quick}.")
    typer.echo(f"wrote {paths['csv']}, {paths['md']}, {paths['png']}")
