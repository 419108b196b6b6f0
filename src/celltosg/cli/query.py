"""`celltosg query`: filter a store's meta-cells and summarise the match."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from celltosg.cli import app

SUMMARY_FIELDS = ("tissue_general", "disease", "cell_type", "sex_normalized", "development_stage_category",
                  "dataset_id", "source")


@app.command("query")
def query_command(
    store: Path = typer.Argument(..., help="Store directory."),
    where: list[str] = typer.Option([], "--where", "-w",
                                    help="FIELD=VALUE condition; repeat it (the same field twice means any of)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Count the meta-cells matching every condition and break them down by the main fields."""
    from celltosg.loader import available_conditions, open_store, parse_where, query

    conditions = parse_where(where)
    opened = open_store(store)
    if not conditions:
        fields = available_conditions(opened)
        typer.echo(json.dumps(fields, indent=2) if as_json else "\n".join(
            f"{k}: {', '.join(v[:20])}{' ...' if len(v) > 20 else ''}" for k, v in fields.items()))
        return
    rows = query(opened, conditions)
    counts = {f: {str(k): int(v) for k, v in rows[f].value_counts().items()}
              for f in SUMMARY_FIELDS if f in rows.columns}
    if as_json:
        typer.echo(json.dumps({"n_cells": len(rows), "conditions": conditions, "counts": counts}, indent=2))
        return
    typer.echo(f"{len(rows)} of {opened.n_cells} meta-cells match")
    for field, values in counts.items():
        typer.echo(f"{field}: " + ", ".join(f"{k} ({v})" for k, v in values.items()))
