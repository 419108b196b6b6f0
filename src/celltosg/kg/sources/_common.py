"""Shared pieces of the source parsers: the parse report, text opening, delimited reading, complexes."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from celltosg.errors import MalformedInputError, MissingSourceError

log = logging.getLogger(__name__)

_MAX_EXAMPLES = 20


@dataclass
class ParseReport:
    """What a parser read: rows seen, rows kept, malformed rows (counted, with examples), unknown ids."""

    source: str
    n_rows: int = 0
    n_kept: int = 0
    n_malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def malformed(self, where: str, reason: str) -> None:
        """Count one malformed row; keep the first few as examples."""
        self.n_malformed += 1
        if len(self.malformed_examples) < _MAX_EXAMPLES:
            self.malformed_examples.append(f"{where}: {reason}")

    def note(self, key: str, n: int = 1) -> None:
        """Count a named event (rows skipped on purpose, self-loops, duplicates, ...)."""
        self.notes[key] = self.notes.get(key, 0) + n

    def emit(self) -> ParseReport:
        """Log the summary (a warning when rows were malformed or ids unknown) and return self."""
        level = logging.WARNING if self.n_malformed or self.unknown else logging.INFO
        log.log(level, "%s", self.summary())
        for example in self.malformed_examples:
            log.debug("  malformed %s", example)
        return self

    def summary(self) -> str:
        """One line: rows read, kept, malformed, unknown and the named counts."""
        parts = [f"{self.source}: {self.n_rows} rows, {self.n_kept} kept, {self.n_malformed} malformed"]
        if self.unknown:
            shown = ", ".join(self.unknown[:10]) + (" ..." if len(self.unknown) > 10 else "")
            parts.append(f"{len(self.unknown)} unknown identifiers ({shown})")
        parts += [f"{k}={v}" for k, v in sorted(self.notes.items())]
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"source": self.source, "n_rows": self.n_rows, "n_kept": self.n_kept,
                "n_malformed": self.n_malformed, "malformed_examples": list(self.malformed_examples),
                "n_unknown": len(self.unknown), "unknown": list(self.unknown), "notes": dict(self.notes)}


class Parsed(NamedTuple):
    """A parsed table and the report of how it was read."""

    table: pd.DataFrame
    report: ParseReport


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path; :class:`MissingSourceError` saying what file was expected if it is absent."""
    path = Path(path)
    if not path.is_file():
        raise MissingSourceError(f"{what} file {path} does not exist; check the path "
                                 "(offline sources are fetched with `celltosg kg fetch`).")
    return path


def open_text(path: Path) -> io.TextIOBase:
    """Open a text file, transparently gunzipping ``*.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_delimited(path: Path, *, delimiter: str, required: list[str], report: ParseReport,
                   what: str, comment: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a delimited file with a header line.

    A header without the ``required`` columns raises :class:`MalformedInputError`; a row with the
    wrong number of fields is counted as malformed in ``report`` and skipped.
    """
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise MalformedInputError(f"{what} file {path} is empty; expected a header with {required}.")
        header = [h.strip().lstrip("#").strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise MalformedInputError(f"{what} file {path} lacks columns {missing} (header: {header[:12]}); "
                                      f"is it really a {what} file?")
        n = len(header)
        for row in reader:
            line = reader.line_num
            if not row or (comment and row[0].startswith(comment)):
                continue
            report.n_rows += 1
            if len(row) != n:
                report.malformed(f"line {line}", f"{len(row)} fields, expected {n}")
                continue
            yield line, dict(zip(header, row, strict=True))


def parse_weight(text: str, *, scale: float = 1.0) -> float | None:
    """A finite non-negative float divided by ``scale``; None when ``text`` is not one."""
    try:
        value = float(text) / scale
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def complex_members(text: str) -> list[str]:
    """Members of a complex written ``COMPLEX:A_B`` or ``A_B`` (a single id gives one member)."""
    text = text.strip()
    if text.upper().startswith("COMPLEX:"):
        text = text[len("COMPLEX:"):]
    return text.split("_") if text else []
