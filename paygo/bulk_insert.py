"""Multi-row ``INSERT … [ON CONFLICT DO NOTHING] RETURNING`` for the hot paths (ingest,
the ledgers reconciliation appends to).

Django's ``bulk_create`` cannot tell which rows an ``ignore_conflicts`` insert really
stored, and on SQLite it splits every insert into chunks of 999 parameters (a limit of
SQLite builds long gone), so a 500-sale batch would cost dozens of statements. This
writes one statement per table per batch (chunked only at the driver's real parameter
limit) and returns the columns asked for, for exactly the rows inserted.

Both backends support the syntax: PostgreSQL since 9.5, SQLite since 3.35 (RETURNING).

On PostgreSQL the rows travel as one array per column (``INSERT … SELECT * FROM
unnest(%s::uuid[], %s::bigint[], …)``): a handful of parameters instead of one per value,
so neither psycopg nor the server parses a 20 000-placeholder statement, and the statement
text is the same for every batch size. Values whose Python type the driver adapts exactly
as Django would (ints, strings, Decimals, aware datetimes, dates, UUIDs) skip the
per-value ``get_db_prep_save`` call, which was the largest Python cost of ingest.

Each array is sent as one PostgreSQL array literal built here (``{1,2,3}``), not as a
Python list: Django's psycopg cursors bind parameters on the client, and psycopg quotes
a list element by element (a regular-expression check per value), which cost about as
much CPU as the rest of the insert. One string per column is quoted once.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

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


# Field types whose ``get_db_prep_save`` on PostgreSQL returns a value of these Python types
# unchanged (psycopg adapts them natively). Anything else takes Django's own path.
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "AutoField": (int,),
    "BigAutoField": (int,),
    "IntegerField": (int,),
    "BigIntegerField": (int,),
    "SmallIntegerField": (int,),
    "PositiveIntegerField": (int,),
    "PositiveBigIntegerField": (int,),
    "PositiveSmallIntegerField": (int,),
    "BooleanField": (bool,),
    "CharField": (str,),
    "TextField": (str,),
    "DecimalField": (Decimal,),
    "UUIDField": (uuid.UUID,),
    "DateField": (datetime.date,),
}


# Canonical UUID texts (lowercase, hyphenated) joined by commas: what str() of a UUID writes.
_UUID_TEXTS_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?:,[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*",
    re.ASCII,
)


def values_plain(field: models.Field, values: Sequence[Any]) -> bool:
    """Every value is of a type that the field's ``get_prep_value`` and (on PostgreSQL)
    ``get_db_prep_save`` return unchanged: ids as ints or UUIDs, codes as strings.

    A UUID field's values may also be given as their canonical text (``str()`` of the
    UUID: lowercase, hyphenated), as ingest holds a batch's sale ids: the driver writes a
    UUID as exactly that text, so the database reads the same value either way. Any other
    spelling (uppercase, no hyphens, braces) takes Django's own preparation."""
    target = field.target_field if field.is_relation else field
    internal = target.get_internal_type()
    plain = _PLAIN_TYPES.get(internal)
    if plain is None:
        return False
    kinds = set(map(type, values))
    if kinds <= {*plain, type(None)}:
        return True
    if internal == "UUIDField" and kinds <= {uuid.UUID, str, type(None)}:
        texts = [value for value in values if type(value) is str]
        joined = ",".join(texts)
        # As many UUIDs as texts (36 characters each): no text holds two of them.
        return len(joined) == 37 * len(texts) - 1 and _UUID_TEXTS_RE.fullmatch(joined) is not None
    return False


def _db_value(field: models.Field) -> Callable[[Any], Any]:
    """A fast equivalent of ``field.get_db_prep_save(value, connection)``: on PostgreSQL a
    value of a type the driver adapts exactly as Django would goes through unchanged
    (the per-value call was the largest Python cost of ingest)."""

    def django_path(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if connection.vendor != "postgresql":
        return django_path
    target = field.target_field if field.is_relation else field
    internal = target.get_internal_type()
    if internal == "DateTimeField":

        def datetime_value(value: Any) -> Any:
            if value is None or (isinstance(value, datetime.datetime) and value.tzinfo is not None):
                return value
            return django_path(value)

        return datetime_value
    plain = _PLAIN_TYPES.get(internal)
    if plain is None:
        return django_path

    def plain_value(value: Any) -> Any:
        return value if value is None or type(value) in plain else django_path(value)

    return plain_value


class _NotPlain(Exception):
    """A value this module does not write as array text (the driver adapts it instead)."""


def _quoted(value: str) -> str:
    # Array element syntax: double quotes, with backslash and double quote escaped. Every
    # string is quoted, so "NULL", "", commas and braces stay text.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _aware_datetime_text(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        raise _NotPlain
    return value.isoformat()


def _uuid_text(value: uuid.UUID) -> str:
    # The 32 hex digits without hyphens, which PostgreSQL reads as the same UUID: one
    # format of the integer instead of UUID.__str__ (a Python call that formats and
    # slices), which was most of the cost of a batch's sale-id columns.
    return f"{value.int:032x}"


def _other_text(value: Any) -> str:
    # A str subclass (a TextChoices member) is written as its text, as the driver would.
    if isinstance(value, str):
        return _quoted(value)
    raise _NotPlain


_ARRAY_TEXT: dict[type, Callable[[Any], str]] = {
    type(None): lambda value: "NULL",
    bool: lambda value: "t" if value else "f",
    int: str,
    Decimal: str,
    uuid.UUID: _uuid_text,
    str: _quoted,
    datetime.datetime: _aware_datetime_text,
    datetime.date: datetime.date.isoformat,
}


# Types whose str() is their array element text (no quoting, never NULL).
_STR_IS_TEXT = frozenset({int, Decimal})


def array_param(values: Sequence[Any]) -> str | list[Any]:
    """One PostgreSQL array parameter (to be cast, e.g. ``%s::uuid[]``) for ``values``,
    already adapted for the database: the array literal as text when every value is of a
    type written here exactly as the driver would write it, else the list itself."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        if kinds <= _STR_IS_TEXT:
            return "{" + ",".join(map(str, values)) + "}"
        if uuid.UUID in kinds:
            return "{" + ",".join([f"{value.int:032x}" for value in values]) + "}"
        if str in kinds:
            # Every element quoted at once: the separators hold two double quotes each, so
            # any more mean a value has one (or a backslash), and each is escaped instead.
            joined = '","'.join(values)
            if joined.count('"') == 2 * (len(values) - 1) and "\\" not in joined:
                return '{"' + joined + '"}'
    text = _ARRAY_TEXT
    try:
        return "{" + ",".join([text.get(type(value), _other_text)(value) for value in values]) + "}"
    except _NotPlain:
        return list(values)


def _column_values(field: models.Field, values: list[Any]) -> list[Any]:
    """``values`` adapted as :func:`_db_value` would, without a call per value when every
    value is already of a type the driver takes as it is (a batch's ids, amounts, codes)."""
    if connection.vendor == "postgresql":
        if values_plain(field, values):
            return values
        target = field.target_field if field.is_relation else field
        if target.get_internal_type() == "JSONField" and set(map(type, values)) <= {dict, list}:
            # The JSON text Django's adapter would send (json.dumps with the field's
            # encoder), as strings: the column's array literal quotes them once, where
            # psycopg would check every element of a list of Jsonb with a regular expression.
            return [json.dumps(value, cls=target.encoder) for value in values]
    adapt = _db_value(field)
    return [adapt(value) for value in values]


# Types whose equal values are also written the same (not Decimal: 1.5 == 1.50; not
# dicts: {"a": 1} == {"a": 1.0} yet jsonb keeps them apart).
_UNIFORM_TYPES = frozenset({type(None), bool, int, str, uuid.UUID, datetime.date, datetime.datetime})


def _uniform(values: list[Any]) -> bool:
    """True if every value is the first one, of the same type, and of a type whose equal
    values are written the same."""
    first = values[0]
    kind = type(first)
    return kind in _UNIFORM_TYPES and values.count(first) == len(values) and set(map(type, values)) == {kind}


def objects_insert(model: type[models.Model], objs: Sequence[models.Model]) -> list[models.Model]:
    """``bulk_create(objs)`` for the append-only ledgers: every concrete field but the
    auto primary key inserted in one statement (arrays on PostgreSQL), the new primary
    keys set on ``objs`` in order (the same assumption ``bulk_create`` makes), no
    conflict handling. Returns ``objs``."""
    if not objs:
        return []
    pk = model._meta.pk
    fields = [f.name for f in model._meta.concrete_fields if f is not pk]
    for obj, (new_pk,) in zip(objs, rows_insert(model, objs, fields=fields, returning=(pk.name,)), strict=True):
        obj.pk = new_pk
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)


def rows_insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str],
    returning: Sequence[str] = ("id",),
    on_conflict_do_nothing: bool = False,
) -> list[tuple]:
    """Insert ``objs`` (only ``fields``) and return ``returning`` of the rows stored.

    :func:`columns_insert` of the objects' values, each read as Django's own insert
    does (``pre_save``: ``auto_now`` fields get their time).
    """
    opts = model._meta
    columns = {name: [opts.get_field(name).pre_save(obj, True) for obj in objs] for name in fields}
    return columns_insert(model, columns, returning=returning, on_conflict_do_nothing=on_conflict_do_nothing)


def columns_insert(
    model: type[models.Model],
    columns: dict[str, list[Any]],
    *,
    returning: Sequence[str] = (),
    on_conflict_do_nothing: bool = False,
) -> list[tuple]:
    """Insert rows given column by column (``{field name: [value per row]}``) and return
    ``returning`` of the rows stored.

    With ``on_conflict_do_nothing`` a row violating ANY unique constraint (the primary key,
    or e.g. the partial unique invoice-number index) is skipped instead of aborting the
    statement, and simply does not appear in the result; callers find out why afterwards.
    Values are what the model attribute would hold (ids for foreign keys); each is
    adapted as the field's ``get_db_prep_save`` would (:func:`_db_value`). Rows needing
    no model instance at all (the sales, lines and payments of a batch) come here
    straight; :func:`rows_insert` takes instances.
    """
    names = list(columns)
    if not names or not columns[names[0]]:
        return []
    opts = model._meta
    fields = [opts.get_field(name) for name in names]
    return_fields = [opts.get_field(name) for name in returning]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    column_sql = ", ".join(quote(f.column) for f in fields)
    suffix = " ON CONFLICT DO NOTHING" if on_conflict_do_nothing else ""
    if return_fields:
        suffix += " RETURNING " + ", ".join(quote(f.column) for f in return_fields)
    arrays = [_column_values(f, values) for f, values in zip(fields, columns.values(), strict=True)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement, one array parameter per column, whatever the row count; a
            # column holding the same value in every row (a batch's terminal, node and time
            # of receipt, its empty invoice fields) is one scalar parameter instead, so
            # neither side writes or parses that value once per row.
            selected, scalars, casts, arrays_sent = [], [], [], []
            for field, values in zip(fields, arrays, strict=True):
                db_type = field.db_type(connection)
                if _uniform(values) and (casts or field is not fields[-1]):
                    selected.append(f"%s::{db_type}")
                    scalars.append(values[0])
                else:
                    selected.append(f"u.c{len(casts)}")
                    casts.append(f"%s::{db_type}[]")
                    arrays_sent.append(array_param(values))
            aliases = ", ".join(f"c{i}" for i in range(len(casts)))
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) SELECT {', '.join(selected)} "
                f"FROM unnest({', '.join(casts)}) AS u({aliases}){suffix}",
                [*scalars, *arrays_sent],
            )
            return [tuple(row) for row in cursor.fetchall()] if return_fields else []
        rows = list(zip(*arrays, strict=True))
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        chunk = max(1, _max_params() // len(fields))
        result: list[tuple] = []
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            params = [value for row in part for value in row]
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) VALUES {', '.join([row_sql] * len(part))}{suffix}", params
            )
            if return_fields:
                result.extend(
                    tuple(f.to_python(value) for f, value in zip(return_fields, row, strict=True))
                    for row in cursor.fetchall()
                )
        return result
