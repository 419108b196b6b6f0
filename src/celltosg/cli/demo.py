"""`celltosg demo`: the whole chain on embedded real data."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_output"), "--out", help="Directory for the store, models and report."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random step."),
    quick: bool = typer.Option(False, "--quick", help="Fewer epochs and cells: a smoke run in a few minutes."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: torch's; 1 is "
                                                                      "fastest on a busy machine)."),
) -> None:
    """Run the end-to-end demo on the PBMC data embedded in scanpy and write a report."""
    from celltosg.demo import run_demo

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    report = run_demo(out, seed=seed, quick=quick)
    typer.echo(f"report written to {report}")
