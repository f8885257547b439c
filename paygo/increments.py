"""Set-based ``column = column + delta`` for many rows, each with its own delta.

The ledgers (stock, balances, units) apply a batch of movements to their materialized
values in one statement. A ``CASE WHEN pk = … THEN … END`` with one branch per row costs
O(rows²) to evaluate and, worse, a Django expression per row to compile: at 500 sales per
reconcile chunk it was the largest cost of reconciliation. On PostgreSQL the deltas are
joined as two arrays instead (``UPDATE … FROM unnest(ids, deltas)``), linear and with two
parameters whatever the number of rows; other backends keep the portable ``CASE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connection, models
from django.db.models import Case, F, Value, When
from django.utils import timezone

from paygo.bulk_insert import array_param


def increments_apply(
    model: type[models.Model],
    field_name: str,
    deltas: Mapping[Any, Any],
    *,
    assign: Mapping[str, Mapping[Any, Any]] | None = None,
) -> int:
    """Add ``deltas[pk]`` to ``field_name`` of each row ``pk`` in one UPDATE; returns rows updated.

    ``assign`` (``{field name: {pk: value}}``, a value for every pk of ``deltas``) sets
    other columns in the same statement, so a row written for two reasons (a balance and
    its feed sequence) gets one new version instead of two.
    """
    if not deltas:
        return 0
    assign = assign or {}
    field = model._meta.get_field(field_name)
    pk = model._meta.pk
    keys = list(deltas)
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        table, column = quote(model._meta.db_table), quote(field.column)
        others = [model._meta.get_field(name) for name in assign]
        sets = [f"{column} = {table}.{column} + d.delta"]
        sets += [f"{quote(other.column)} = d.v{index}" for index, other in enumerate(others)]
        arrays = [f"%s::{pk.db_type(connection)}[]", f"%s::{field.db_type(connection)}[]"]
        arrays += [f"%s::{other.db_type(connection)}[]" for other in others]
        names = ", ".join(["pk", "delta", *(f"v{index}" for index in range(len(others)))])
        sql = (
            f"UPDATE {table} SET {', '.join(sets)}"
            f" FROM unnest({', '.join(arrays)}) AS d({names})"
            f" WHERE {table}.{quote(pk.column)} = d.pk"
        )
        params = [array_param(keys), array_param([deltas[key] for key in keys])]
        params += [array_param([values[key] for key in keys]) for values in assign.values()]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    updates = {
        field_name: F(field_name)
        + Case(
            *[When(pk=key, then=Value(delta)) for key, delta in deltas.items()],
            default=Value(0),
            output_field=field.__class__(**_numeric_kwargs(field)),
        )
    }
    for name, values in assign.items():
        other = model._meta.get_field(name)
        updates[name] = Case(
            *[When(pk=key, then=Value(values[key])) for key in keys],
            default=F(name),
            output_field=other.__class__(**_numeric_kwargs(other)),
        )
    return model._default_manager.filter(pk__in=keys).update(**updates)


def increments_upsert(
    model: type[models.Model],
    keys: tuple[str, ...],
    field_name: str,
    deltas: Mapping[tuple, Any],
    *,
    touched: str | None = None,
) -> int:
    """Add ``deltas[key]`` to ``field_name`` of the row with those ``keys`` (a unique
    constraint's fields), creating the row with the delta when it does not exist yet, in
    one ``INSERT … ON CONFLICT (keys) DO UPDATE SET field = field + excluded.field``.

    Every other column of a new row takes its model default (given in the statement, as
    Django does not create database defaults); ``touched`` names a timestamp column set
    to now on insert and update (an ``auto_now`` field). Returns the rows written. The
    conflict check and the addition are one atomic step, so two writers of one row
    cannot lose an increment, and no row is read first. Rows are written (and locked) in
    key order.
    """
    if not deltas:
        return 0
    opts = model._meta
    quote = connection.ops.quote_name
    key_fields = [opts.get_field(name) for name in keys]
    field = opts.get_field(field_name)
    now = timezone.now()
    others = [
        f
        for f in opts.concrete_fields
        if f is not opts.pk and f not in key_fields and f is not field and f.name != touched
    ]
    # In key order: concurrent writers of the same rows lock them in the same order.
    rows = sorted(deltas.items())
    columns: list[tuple[models.Field, list[Any]]] = [
        *((f, [key[i] for key, _ in rows]) for i, f in enumerate(key_fields)),
        (field, [delta for _, delta in rows]),
        *((f, [f.get_default()] * len(rows)) for f in others),
    ]
    if touched is not None:
        columns.append((opts.get_field(touched), [now] * len(rows)))
    table, column = quote(opts.db_table), quote(field.column)
    names = ", ".join(quote(f.column) for f, _ in columns)
    sets = [f"{column} = {table}.{column} + excluded.{column}"]
    if touched is not None:
        stamp = quote(opts.get_field(touched).column)
        sets.append(f"{stamp} = excluded.{stamp}")
    conflict = f" ON CONFLICT ({', '.join(quote(f.column) for f in key_fields)}) DO UPDATE SET {', '.join(sets)}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f, _ in columns)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({casts}){conflict}",
                [array_param([f.get_db_prep_save(v, connection) for v in values]) for f, values in columns],
            )
            return cursor.rowcount
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        written = 0
        for start in range(0, len(rows), _SQLITE_ROWS):
            part = range(start, min(start + _SQLITE_ROWS, len(rows)))
            params = [f.get_db_prep_save(values[i], connection) for i in part for f, values in columns]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([row_sql] * len(part))}{conflict}", params)
            written += cursor.rowcount
        return written


# Rows per statement on SQLite (one parameter per value; its limit is 32766 at least).
_SQLITE_ROWS = 1000


def _numeric_kwargs(field: models.Field) -> dict[str, Any]:
    if isinstance(field, models.DecimalField):
        return {"max_digits": field.max_digits, "decimal_places": field.decimal_places}
    return {}
