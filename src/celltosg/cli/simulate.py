"""`celltosg simulate`: write simulated h5ad files with known disease genes."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app


def _names(values: list[str] | None) -> list[str]:
    """Repeatable options that may also hold comma-separated lists."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="New directory for the .h5ad files and ground_truth.json."),
    cells: int = typer.Option(..., "--cells", min=1, help="Total number of cells."),
    donors: int = typer.Option(..., "--donors", min=1, help="Number of donors (at least tissues x conditions)."),
    tissues: list[str] = typer.Option(["blood"], "--tissues", help="Tissues; repeat or separate by commas."),
    diseases: list[str] = typer.Option([], "--diseases", help="Diseases beside 'normal'; repeat or separate by commas."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes byte-identical files."),
    kg: str = typer.Option("human", "--kg", help="Knowledge-graph pack name or directory whose genes are simulated."),
    cells_per_file: int | None = typer.Option(None, "--cells-per-file", min=1,
                                              help="Cells per file (default: one file per donor)."),
    genes: int | None = typer.Option(None, "--genes", min=1, help="Simulate only this many genes (default: all)."),
    disease_effect: float | None = typer.Option(None, "--disease-effect", min=0.0,
                                                help="Log2 fold-change scale of the disease genes (each moves by "
                                                     "+-effect x U(2/3, 4/3)); default 2.0, calibrated in "
                                                     "docs/benchmarks.md."),
    module_size: int | None = typer.Option(None, "--module-size", min=1,
                                           help="Proteins per disease module (default 20)."),
    affected_fraction: float | None = typer.Option(None, "--affected-fraction", min=0.0, max=1.0,
                                                   help="Share of the tissue's cell types carrying the disease "
                                                        "shift (default 0.5)."),
    disease_genes: str = typer.Option("module", "--disease-genes",
                                      help="module (a connected PPI module) or random (as many genes scattered "
                                           "over the graph with the same expression distribution)."),
    confound: bool = typer.Option(False, "--confound", help="Give each dataset a single condition (confounded "
                                                            "design); default: cases and controls in every dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Simulate raw-count single-cell data: cell types, donors, batches, sex, age and disease modules."""
    from celltosg.build import simulate as run

    disease = {"disease_effect": disease_effect, "module_size": module_size, "affected_fraction": affected_fraction}
    result = run(out, n_cells=cells, n_donors=donors, tissues=_names(tissues), diseases=_names(diseases),
                 seed=seed, kg=kg, cells_per_file=cells_per_file, n_genes=genes, disease_genes=disease_genes,
                 confound=confound, overwrite=overwrite, **{k: v for k, v in disease.items() if v is not None})
    typer.echo(f"wrote {len(result.files)} files to {out}; ground truth: {result.ground_truth_path}")
