"""Cohort queries: filter a store's ``obs.parquet`` with DuckDB, bound parameters only."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celltosg.errors import QueryError, StoreError
from celltosg.loader._fields import INTERNAL_COLUMNS, resolve_field

logger = logging.getLogger(__name__)

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
_TEXT = ("VARCHAR", "BOOLEAN")
_MAX_LISTED = 40


@dataclass(frozen=True)
class _Condition:
    """One resolved condition: ``column`` equals any of ``values`` (strings lower-cased, or numbers)."""

    field: str
    column: str
    values: tuple
    numeric: bool
    given: tuple = ()  # the values as the user wrote them, for messages

    @property
    def shown(self) -> list:
        return list(self.given or self.values)

    def sql(self) -> tuple[str, list]:
        ident = _quote(self.column)
        marks = ", ".join("?" for _ in self.values)
        if self.numeric:
            return f"{ident} IN ({marks})", list(self.values)
        return f"lower(trim(CAST({ident} AS VARCHAR))) IN ({marks})", list(self.values)


def _quote(column: str) -> str:
    """Quote a column name that was validated against the table's columns."""
    return '"' + column.replace('"', '""') + '"'


def obs_path(store) -> Path:
    """Path of the store's ``obs.parquet``."""
    path = Path(store.root) / "obs.parquet"
    if not path.is_file():
        raise StoreError(f"{path} is missing: the store at {store.root} is incomplete; rebuild it.")
    return path


def _connect():
    import duckdb

    return duckdb.connect(database=":memory:")


def _schema(con, path: Path) -> dict[str, str]:
    rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    return {name: str(kind).upper() for name, kind, *_ in rows}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _resolve(conditions: Mapping[str, Any], schema: Mapping[str, str]) -> list[_Condition]:
    resolved = []
    for field, raw in conditions.items():
        if raw is None:
            continue
        column = resolve_field(field, schema)
        values = list(raw) if isinstance(raw, list | tuple | set | frozenset | np.ndarray) else [raw]
        values = [v for v in values if v is not None]
        if not values:
            raise QueryError(f"condition {field!r} lists no values; give a value, a list of values, or None.")
        numeric = schema[column].startswith(_NUMERIC) and all(_is_number(v) for v in values)
        if numeric:
            resolved.append(_Condition(field, column, tuple(values), True))
        else:
            lowered = tuple(sorted({str(v).strip().lower() for v in values}))
            given = tuple(dict.fromkeys(str(v).strip() for v in values))
            resolved.append(_Condition(field, column, lowered, False, given))
    return resolved


def _value_counts(con, path: Path, column: str, where: list[_Condition]) -> pd.Series:
    """Counts of each value of ``column`` among rows matching ``where`` (most frequent first)."""
    clauses, params = _where(where)
    sql = (f"SELECT CAST({_quote(column)} AS VARCHAR) AS v, count(*) AS n FROM read_parquet(?) {clauses} "
           "GROUP BY v ORDER BY n DESC, v")
    rows = con.execute(sql, [str(path), *params]).fetchall()
    return pd.Series({("<missing>" if v is None else v): n for v, n in rows}, dtype="int64")


def _where(conditions: list[_Condition]) -> tuple[str, list]:
    if not conditions:
        return "", []
    parts, params = [], []
    for condition in conditions:
        sql, values = condition.sql()
        parts.append(sql)
        params.extend(values)
    return "WHERE " + " AND ".join(parts), params


def _listing(counts: pd.Series) -> str:
    shown = [f"{value} ({n})" for value, n in counts.iloc[:_MAX_LISTED].items()]
    more = f", ... {len(counts) - _MAX_LISTED} more" if len(counts) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _check_values_exist(con, path: Path, condition: _Condition) -> None:
    if condition.numeric:
        return
    counts = _value_counts(con, path, condition.column, [])
    known = {str(v).strip().lower() for v in counts.index}
    unknown = [v for v in condition.given if v.lower() not in known]
    if len(unknown) == len(condition.given):
        raise QueryError(
            f"no meta-cell has {condition.field}={', '.join(map(repr, unknown))} (column {condition.column!r}); "
            f"values present: {_listing(counts)}."
        )
    if unknown:
        logger.warning("%s: values %s occur in no meta-cell and match nothing", condition.field, unknown)


def _explain_empty(con, path: Path, conditions: list[_Condition]) -> QueryError:
    """Find the first condition that empties the result and list that field's values before it."""
    for k in range(1, len(conditions) + 1):
        clauses, params = _where(conditions[:k])
        n = con.execute(f"SELECT count(*) FROM read_parquet(?) {clauses}", [str(path), *params]).fetchone()[0]
        if n == 0:
            culprit = conditions[k - 1]
            before = conditions[: k - 1]
            counts = _value_counts(con, path, culprit.column, before)
            scope = " and ".join(f"{c.field}={c.shown}" for c in before) or "the whole store"
            return QueryError(
                f"condition {culprit.field}={culprit.shown} leaves no meta-cell (after {scope}); "
                f"values of {culprit.column!r} there: {_listing(counts)}. Relax or change that condition."
            )
    return QueryError("the query matched no meta-cell")


def parse_where(items: Sequence[str] | None) -> dict[str, list[str]]:
    """Command-line ``FIELD=VALUE`` conditions as a :func:`query` mapping; a field given twice means any of.

    ``["tissue=lung", "sex=female", "tissue=blood"]`` -> ``{"tissue": ["lung", "blood"], "sex": ["female"]}``.
    Raises :class:`QueryError` for an item without ``=``, a field or a value.
    """
    conditions: dict[str, list[str]] = {}
    for item in items or ():
        field, sep, value = item.partition("=")
        if not sep or not field.strip() or not value.strip():
            raise QueryError(f"--where {item!r} is not FIELD=VALUE; write for example --where tissue_general=lung")
        conditions.setdefault(field.strip(), []).append(value.strip())
    return conditions


def query_positions(store, conditions: Mapping[str, Any]) -> np.ndarray:
    """Store positions (int64, sorted) of the meta-cells matching ``conditions``; see :func:`query`."""
    path = obs_path(store)
    con = _connect()
    try:
        resolved = _resolve(conditions, _schema(con, path))
        for condition in resolved:
            _check_values_exist(con, path, condition)
        clauses, params = _where(resolved)
        sql = f"SELECT file_row_number FROM read_parquet(?, file_row_number = true) {clauses} ORDER BY 1"
        positions = np.asarray([r[0] for r in con.execute(sql, [str(path), *params]).fetchall()], dtype=np.int64)
        if positions.size == 0:
            raise _explain_empty(con, path, resolved)
        return positions
    finally:
        con.close()


def query(store, conditions: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of ``store.obs`` matching every condition.

    Parameters
    ----------
    store
        An open :class:`celltosg.store.TOSGStore`.
    conditions
        Field -> value or list of values (any of). Fields are obs columns or the reference's aliases
        (``CMT_name``, ``disease_BMG_name``, ``sex``, ``development_stage``, ...). Text matches ignore case
        and surrounding spaces; ``None`` values are skipped.

    Returns
    -------
    pandas.DataFrame
        The matching rows of ``store.obs``; the index holds their store positions.

    Raises
    ------
    QueryError
        For an unknown field (naming the valid ones), a value no meta-cell has, or an empty result
        (naming the condition that emptied it and listing that field's values).
    """
    positions = query_positions(store, conditions)
    rows = store.obs.iloc[positions].copy()
    rows.index = pd.Index(positions, name="position")
    logger.debug("query matched %d of %d meta-cells", len(rows), store.n_cells)
    return rows


def available_conditions(store) -> dict[str, list[str]]:
    """Each text field of the store's obs table -> its distinct values (sorted; missing ones left out)."""
    path = obs_path(store)
    con = _connect()
    try:
        schema = _schema(con, path)
        out = {}
        for column, kind in schema.items():
            if column in INTERNAL_COLUMNS or not kind.startswith(_TEXT):
                continue
            rows = con.execute(
                f"SELECT DISTINCT CAST({_quote(column)} AS VARCHAR) FROM read_parquet(?) WHERE {_quote(column)} "
                "IS NOT NULL ORDER BY 1", [str(path)]).fetchall()
            out[column] = [r[0] for r in rows]
        return out
    finally:
        con.close()
