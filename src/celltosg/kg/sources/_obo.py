"""GO OBO 1.2 (``go-basic.obo``): ``[Term]`` stanzas with ``id``, ``name``, ``namespace``."""

from __future__ import annotations

import os

import pandas as pd

from celltosg.kg.sources._common import Parsed, ParseReport, open_text, require_file

_NAMESPACES = {"biological_process": "BP", "molecular_function": "MF", "cellular_component": "CC"}


def parse_go_obo(path: str | os.PathLike) -> Parsed:
    """Read the ``[Term]`` stanzas of a GO OBO file.

    Returns
    -------
    Parsed
        ``table`` with ``go_id``, ``term`` and ``ontology`` (BP / MF / CC), the same columns as
        :func:`read_go_terms`. Obsolete terms are skipped and counted; a term without ``id``, ``name`` or a
        known ``namespace`` is malformed.
    """
    path = require_file(path, "GO OBO")
    report = ParseReport(str(path))
    rows: list[tuple[str, str, str]] = []
    stanza: dict[str, str] | None = None
    start = 0

    def flush() -> None:
        if stanza is None:
            return
        report.n_rows += 1
        if stanza.get("is_obsolete") == "true":
            report.note("obsolete")
        elif not stanza.get("id") or not stanza.get("name") or stanza.get("namespace") not in _NAMESPACES:
            report.malformed(f"line {start}", f"term {stanza.get('id', '?')} lacks id, name or a GO namespace")
        else:
            rows.append((stanza["id"], stanza["name"], _NAMESPACES[stanza["namespace"]]))

    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if line.startswith("["):
                flush()
                stanza, start = ({} if line == "[Term]" else None), number
            elif stanza is not None and ":" in line:
                key, _, value = line.partition(":")
                stanza.setdefault(key.strip(), value.split(" ! ")[0].strip())
        flush()
    report.n_kept = len(rows)
    return Parsed(pd.DataFrame(rows, columns=["go_id", "term", "ontology"]), report.emit())
