"""Multi-row ``INSERT … [ON CONFLICT DO NOTHING] RETURNING`` for the ingest hot path.

Django's ``bulk_create`` cannot tell which rows an ``ignore_conflicts`` insert really
stored, and on SQLite it splits every insert into chunks of 999 parameters (a limit of
SQLite builds long gone), so a 500-sale batch would cost dozens of statements. This
writes one statement per table per batch (chunked only at the driver's real parameter
limit) and returns the columns asked for, for exactly the rows inserted.

Both backends support the syntax: PostgreSQL since 9.5, SQLite since 3.35 (RETURNING).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

# psycopg sends at most 65535 parameters per statement.
_POSTGRES_MAX_PARAMS = 65535
# SQLite's compile-time default since 3.32; builds may lower it, so ask the driver when possible.
_SQLITE_DEFAULT_MAX_PARAMS = 32766


def _max_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        getlimit = getattr(connection.connection, "getlimit", None)  # Python >= 3.11
        if getlimit is not None:
            import sqlite3

            return min(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), _SQLITE_DEFAULT_MAX_PARAMS)
        return 999
    return _POSTGRES_MAX_PARAMS


def rows_insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str],
    returning: Sequence[str] = ("id",),
    on_conflict_do_nothing: bool = False,
) -> list[tuple]:
    """Insert ``objs`` (only ``fields``) and return ``returning`` of the rows stored.

    With ``on_conflict_do_nothing`` a row violating ANY unique constraint (the primary key,
    or e.g. the partial unique invoice-number index) is skipped instead of aborting the
    statement, and simply does not appear in the result; callers find out why afterwards.
    Values are adapted by each field exactly as Django's own insert does.
    """
    if not objs:
        return []
    opts = model._meta
    insert_fields = [opts.get_field(name) for name in fields]
    return_fields = [opts.get_field(name) for name in returning]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in insert_fields)
    returned = ", ".join(quote(f.column) for f in return_fields)
    row_sql = "(" + ", ".join(["%s"] * len(insert_fields)) + ")"
    chunk = max(1, _max_params() // len(insert_fields))
    result: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), chunk):
            part = objs[start : start + chunk]
            params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in part for f in insert_fields]
            sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES {', '.join([row_sql] * len(part))}"
            if on_conflict_do_nothing:
                sql += " ON CONFLICT DO NOTHING"
            sql += f" RETURNING {returned}"
            cursor.execute(sql, params)
            result.extend(
                tuple(f.to_python(value) for f, value in zip(return_fields, row, strict=True))
                for row in cursor.fetchall()
            )
    return result
