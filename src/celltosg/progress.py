"""Progress bars for long steps (rich), quiet when output is not a terminal or CELLTOSG_QUIET is set."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars show on a terminal unless CELLTOSG_QUIET is set; CELLTOSG_PROGRESS=1 forces them."""
    if os.environ.get("CELLTOSG_QUIET"):
        return False
    return bool(os.environ.get("CELLTOSG_PROGRESS")) or sys.stderr.isatty()


def progress(iterable: Iterable[T], *, description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``iterable`` under a progress bar named ``description``."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not progress_enabled():
        yield from iterable
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)
