"""`celltosg store verify|info`: check a store against its manifest, print its counts."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from celltosg.cli import app

store_app = typer.Typer(help="TOSG stores: verify checksums, print counts.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("verify")
def verify(store: Path = typer.Argument(..., help="Store directory.")) -> None:
    """Check every shard and table against the manifest; name each missing or corrupt one (exit 1)."""
    from celltosg.errors import CellTOSGError
    from celltosg.store import verify_store

    try:
        problems = verify_store(store)
    except CellTOSGError as error:  # no readable manifest: still a problem, so exit 1 like the others
        problems = [str(error)]
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{store}: {len(problems)} problem(s)")
        raise typer.Exit(code=1)
    typer.echo(f"{store}: every shard matches the manifest")


@store_app.command("info")
def info(store: Path = typer.Argument(..., help="Store directory."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Print counts per tissue / disease / cell type / source and the on-disk size of the expression."""
    from celltosg.store import TOSGStore

    summary = TOSGStore.open(store).info()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{summary['path']}: {summary['n_cells']} meta-cells ({summary['n_raw_cells']} cells) x "
               f"{summary['n_nodes']} RNA nodes, pack {summary['kg_name']} ({summary['kg_checksum'][:12]})")
    typer.echo(f"expression: {summary['expression_bytes']} bytes in {summary['n_shards']} shards, "
               f"{summary['bytes_per_cell']:.0f} bytes per meta-cell, {summary['bytes_per_value']:.3f} per value")
    for key in ("by_tissue", "by_disease", "by_cell_type", "by_source"):
        counts = ", ".join(f"{label} {n}" for label, n in summary[key].items())
        typer.echo(f"{key.removeprefix('by_').replace('_', ' ')}: {counts or '-'}")
