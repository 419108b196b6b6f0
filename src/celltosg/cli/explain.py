"""`celltosg explain`: the signaling subgraph a fine-tuned model relies on for one class."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app


@app.command()
def explain(
    checkpoint: Path = typer.Argument(..., help="Fine-tuned checkpoint (from `celltosg finetune`)."),
    store: Path = typer.Argument(..., help="TOSG store directory holding the cells to explain."),
    where: list[str] = typer.Option([], "--where", help="FIELD=VALUE cell filter; repeat it (same field = any of)."),
    class_label: str = typer.Option(..., "--class", help="The class to explain (one of the model's labels)."),
    contrast: str | None = typer.Option(
        None, "--contrast", "--reference",
        help="Compare with this class (e.g. normal): class logit minus its logit. Default: minus the mean of the "
             "other classes' logits."),
    top_k: int = typer.Option(120, "--top-k", help="Most nodes of the core subgraph (seeds plus connectors)."),
    out: Path = typer.Option(..., "--out", help="Output directory (replaced if it exists)."),
    max_cells: int = typer.Option(2000, "--max-cells", help="At most this many cells per class (seeded subset)."),
    method: str = typer.Option("gradient_x_input", "--method",
                               help="gradient_x_input (default), integrated_gradients or attention "
                                    "(docs/benchmarks.md compares them)."),
    baseline: str = typer.Option("mean", "--baseline",
                                 help="Reference profile of the gradient methods: mean (cohort mean) or zeros."),
    layers: list[int] = typer.Option([], "--layer", help="Attention layer index to use; repeat it (default all)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Cells per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cell subset and the plot layout."),
) -> None:
    """Explain a class as a signaling subgraph: importance, top-k core subgraph, enrichment, figures."""
    from celltosg.fm import CellTOSGFM
    from celltosg.loader import parse_where

    conditions = parse_where(where)
    result = CellTOSGFM.load(checkpoint).explain(class_label, store=store, where=conditions, out_dir=out,
                                                 contrast=contrast, top_k=top_k, max_cells=max_cells, method=method,
                                                 baseline=baseline, layers=layers or None, batch_size=batch_size,
                                                 seed=seed)
    summary = result.summary
    typer.echo(f"{summary['n_cells']} cells of {class_label!r} against {contrast or 'the other classes'} "
               f"({summary['method']})")
    typer.echo("top genes: " + ", ".join(g["symbol"] for g in summary["top_genes"][:10]))
    typer.echo(f"core subgraph: {summary['n_nodes']} nodes ({summary['n_seeds']} seeds, {summary['n_connectors']} "
               f"connectors; {summary['n_unconnected']} top nodes unconnected), {summary['n_edges']} edges, "
               f"{summary['n_genes']} genes")
    top = result.enrichment.nsmallest(5, "p")
    for row in top.itertuples(index=False):
        typer.echo(f"  {row.collection:6s} {row.term_name[:60]:60s} overlap {row.overlap:3d}  q {row.q:.2e}")
    typer.echo(f"written to {out}")
