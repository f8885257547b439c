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


def increments_apply(model: type[models.Model], field_name: str, deltas: Mapping[Any, Any]) -> int:
    """Add ``deltas[pk]`` to ``field_name`` of each row ``pk`` in one UPDATE; returns rows updated."""
    if not deltas:
        return 0
    field = model._meta.get_field(field_name)
    pk = model._meta.pk
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        table, column = quote(model._meta.db_table), quote(field.column)
        sql = (
            f"UPDATE {table} SET {column} = {table}.{column} + d.delta"
            f" FROM unnest(%s::{pk.db_type(connection)}[], %s::{field.db_type(connection)}[]) AS d(pk, delta)"
            f" WHERE {table}.{quote(pk.column)} = d.pk"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(deltas), list(deltas.values())])
            return cursor.rowcount
    return model._default_manager.filter(pk__in=list(deltas)).update(
        **{
            field_name: F(field_name)
            + Case(
                *[When(pk=key, then=Value(delta)) for key, delta in deltas.items()],
                default=Value(0),
                output_field=field.__class__(**_numeric_kwargs(field)),
            )
        }
    )


def _numeric_kwargs(field: models.Field) -> dict[str, Any]:
    if isinstance(field, models.DecimalField):
        return {"max_digits": field.max_digits, "decimal_places": field.decimal_places}
    return {}
