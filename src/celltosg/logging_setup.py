"""Configure logging once for the command-line program."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

_CONFIGURED = False


def configure_logging(verbose: bool = False) -> None:
    """Install one rich handler, writing to stderr, on the ``celltosg`` logger (idempotent).

    Logs go to stderr so that ``--json`` output on stdout stays machine-readable.
    """
    global _CONFIGURED
    logger = logging.getLogger("celltosg")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if _CONFIGURED:
        return
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    _CONFIGURED = True
