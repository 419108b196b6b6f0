"""The ``celltosg`` command-line program: thin commands that call the package's functions.

Each submodule registers the commands of one package on :data:`app`.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from celltosg.errors import CellTOSGError
from celltosg.logging_setup import configure_logging

app = typer.Typer(
    name="celltosg",
    help="Text-Omic Signaling Graphs: build, query, model and explain single-cell signaling graphs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logging.")) -> None:
    configure_logging(verbose)


# Command modules register themselves on `app` when imported.
from celltosg.cli import (  # noqa: E402,F401
    benchmark,
    build,
    demo,
    explain,
    kg,
    query,
    simulate,
    store,
    train,
)

_err = Console(stderr=True)


def main() -> None:
    """Entry point: run the app and turn celltosg errors into one clear line and exit code 2."""
    try:
        # with standalone_mode=False, click returns the code of `raise typer.Exit(code)` instead of exiting
        code = app(standalone_mode=False)
    except CellTOSGError as error:
        _err.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        _err.print("aborted")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:  # click usage errors carry their own exit code
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
