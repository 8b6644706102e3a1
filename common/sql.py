"""SQL helpers every room may use on its own tables."""

from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import BooleanField, CharField, Field, IntegerField, Model, TextField


def rows_per_statement(columns: int) -> int:
    """How many rows one multi-row VALUES of `columns` parameters a row may carry on this database
    (SQLite counts its parameters; elsewhere a thousand rows a statement)."""
    limit = connection.features.max_query_params
    return max(1, limit // columns) if limit else 1_000


def _arrays() -> bool:
    """Does this database take a column of rows as one array parameter?"""
    return connection.vendor == "postgresql"


def row_sets(types: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[tuple[str, list[Any]]]:
    """Rows as a table expression for `INSERT INTO t (…) <it>` or `WITH x (…) AS (<it>)`: (sql, params) pieces.

    PostgreSQL: one piece, `SELECT * FROM unnest(%s::type[], …)`, one array parameter a column
    (`types`: each column's SQL type), whatever the number of rows: no statement grows with the rows.
    Elsewhere (SQLite): multi-row VALUES, as many pieces as its parameter limit asks. Values must be
    ready for the database (what Field.get_db_prep_value gives).
    """
    if not rows:
        return
    if _arrays():
        columns: list[list[Any]] = [[] for _ in types]
        for row in rows:
            for values, value in zip(columns, row, strict=True):
                values.append(value)
        yield "SELECT * FROM unnest(" + ", ".join(f"%s::{kind}[]" for kind in types) + ")", list(columns)
        return
    step = rows_per_statement(len(types))
    one = "(" + ", ".join(["%s"] * len(types)) + ")"
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        yield "VALUES " + ", ".join([one] * len(chunk)), [value for row in chunk for value in row]


_NATIVE = (str, int, bool, type(None))


def _plain(field: "Field[Any, Any]") -> bool:
    """A column whose native Python values (str, int, bool, None) go to the database as they are, on every
    backend: text and integers, and a foreign key to one. UUIDs, times and JSON are prepared."""
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    return isinstance(target, (CharField, TextField, IntegerField, BooleanField))


def rows_insert(
    model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]], *, suffix: str = ""
) -> list[tuple[Any, ...]]:
    """INSERT `rows` (values of `fields`, in that order) into the model's own table in as few statements as
    the database takes (`row_sets`), each value prepared as the field prepares it for a save. `suffix`:
    `ON CONFLICT … DO NOTHING`, `RETURNING …`. The rows RETURNING gives (none without it).

    For a room's bulk writes of its own table where Django's bulk_create costs more than the rows
    (seed: thousands of users, accounts, audit rows a second). No defaults, no signals: give every
    column that has no database default.
    """
    meta = model._meta
    columns: list[Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        if not isinstance(field, Field):  # a reverse relation: not a column of this table
            raise ValueError(f"{model.__name__}.{name} is not a column")
        columns.append(field)
    types = [str(field.db_type(connection)) for field in columns]
    prepare = [field.get_db_prep_save for field in columns]
    plain = [_plain(field) for field in columns]
    prepared = [
        [
            value if is_plain and type(value) in _NATIVE else prep(value, connection)
            for prep, is_plain, value in zip(prepare, plain, row, strict=True)
        ]
        for row in rows
    ]
    returned: list[tuple[Any, ...]] = []
    names = ", ".join(connection.ops.quote_name(str(field.column)) for field in columns)
    with connection.cursor() as cursor:
        for rows_sql, params in row_sets(types, prepared):
            cursor.execute(
                f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({names}) {rows_sql} {suffix}", params
            )
            if "RETURNING" in suffix.upper():
                returned += cursor.fetchall()
    return returned
