"""One exception family for every user-facing failure.

Each message says what was wrong, where, and what to do about it.
"""

from __future__ import annotations


class CellTOSGError(Exception):
    """Base class of every error celltosg raises for bad input or state."""


class MissingSourceError(CellTOSGError):
    """A knowledge source file is missing (the message names the command that fetches it)."""


class MalformedInputError(CellTOSGError):
    """An input file is malformed: wrong format, missing columns, bad values."""


class UnknownIdentifierError(CellTOSGError):
    """Genes, labels or fields that are not known."""


class StoreError(CellTOSGError):
    """A TOSG store is missing, incomplete, corrupt or incompatible."""


class QueryError(CellTOSGError):
    """A cohort query is invalid or matches nothing."""


class SplitError(CellTOSGError):
    """A train / validation / test split cannot be made as asked."""


class CheckpointError(CellTOSGError):
    """A model checkpoint is missing, corrupt or incompatible."""
