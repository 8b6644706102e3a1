"""SQL helpers every room may use on its own tables."""

from django.db import connection


def rows_per_statement(columns: int) -> int:
    """How many rows one multi-row INSERT of `columns` parameters a row may carry on this database
    (SQLite counts its parameters; PostgreSQL takes a thousand rows a statement here)."""
    limit = connection.features.max_query_params
    return max(1, limit // columns) if limit else 1_000
