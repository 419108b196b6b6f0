"""Read-only access to the Bioconductor annotation SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from celltosg.errors import MalformedInputError


def connect_readonly(path: Path, *, what: str, tables: list[str]) -> sqlite3.Connection:
    """Open ``path`` read-only and check it holds ``tables``; :class:`MalformedInputError` otherwise."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        present = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = ?", ("table",))}
    except sqlite3.DatabaseError as error:
        raise MalformedInputError(f"{what} file {path} is not a readable SQLite database ({error}); "
                                  "fetch it again with `celltosg kg fetch`.") from error
    missing = sorted(set(tables) - present)
    if missing:
        con.close()
        raise MalformedInputError(f"{what} file {path} lacks tables {missing}; is it really {what}?")
    return con
