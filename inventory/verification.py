"""Verification of the materialized values against their ledgers (DESIGN principle 2).

Node stock, customer balances and unit balances are recomputed from the stock, balance
and unit ledgers with aggregate queries; any difference is a drift to investigate.
"""

from __future__ import annotations

from typing import Any

from django.db.models import DecimalField, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import BalanceMovement, Customer, UnitBalance, UnitMovement
from inventory.models import QUANTITY, LedgerVerification, NodeStock, StockMovement

MONEY_FIELD = DecimalField(max_digits=14, decimal_places=2)
QUANTITY_FIELD = DecimalField(**QUANTITY)


def stock_drifts() -> tuple[int, list[dict[str, Any]]]:
    """Node stock rows that differ from the sum of their movements, and movements with
    no stock row. Two queries plus a count."""
    ledger = StockMovement.objects.filter(node_id=OuterRef("node_id"), product_id=OuterRef("product_id")).order_by()
    rows = (
        NodeStock.objects.annotate(ledger=_grouped_sum(ledger, "quantity", QUANTITY_FIELD))
        .filter(~Q(quantity=F("ledger")))
        .values_list("node__code", "product__sku", "quantity", "ledger")
    )
    drifts = [
        {"kind": "stock", "node": n, "sku": s, "materialized": str(q), "ledger": str(led)} for n, s, q, led in rows
    ]
    orphans = (
        StockMovement.objects.filter(
            ~Exists(NodeStock.objects.filter(node_id=OuterRef("node_id"), product_id=OuterRef("product_id")))
        )
        .values("node__code", "product__sku")
        .annotate(total=Sum("quantity"))
        .exclude(total=0)
        .order_by()
    )
    drifts += [
        {
            "kind": "stock",
            "node": o["node__code"],
            "sku": o["product__sku"],
            "materialized": None,
            "ledger": str(o["total"]),
        }
        for o in orphans
    ]
    return NodeStock.objects.count(), drifts


def _grouped_sum(queryset, column: str, output_field) -> Coalesce:
    # GROUP BY a constant so the correlated subquery yields one SUM row per outer row.
    total = queryset.annotate(one=Value(1)).values("one").annotate(total=Sum(column)).values("total")
    return Coalesce(Subquery(total, output_field=output_field), Value(0, output_field=output_field))


def balance_drifts() -> tuple[int, list[dict[str, Any]]]:
    """Customers whose balance differs from the sum of their balance movements."""
    ledger = BalanceMovement.objects.filter(customer_id=OuterRef("pk")).order_by()
    rows = (
        Customer.objects.annotate(ledger=_grouped_sum(ledger, "amount", MONEY_FIELD))
        .filter(~Q(balance=F("ledger")))
        .values_list("code", "institution__code", "balance", "ledger")
    )
    drifts = [
        {"kind": "balance", "customer": c, "institution": i, "materialized": str(b), "ledger": str(led)}
        for c, i, b, led in rows
    ]
    return Customer.objects.count(), drifts


def unit_drifts() -> tuple[int, list[dict[str, Any]]]:
    """Unit balances that differ from their unit movements, and movements with no row."""
    ledger = UnitMovement.objects.filter(
        customer_id=OuterRef("customer_id"), unit_type=OuterRef("unit_type")
    ).order_by()
    rows = (
        UnitBalance.objects.annotate(ledger=_grouped_sum(ledger, "quantity", IntegerField()))
        .filter(~Q(quantity=F("ledger")))
        .values_list("customer__code", "unit_type", "quantity", "ledger")
    )
    drifts = [
        {"kind": "units", "customer": c, "unit_type": u, "materialized": q, "ledger": led} for c, u, q, led in rows
    ]
    orphans = (
        UnitMovement.objects.filter(
            ~Exists(UnitBalance.objects.filter(customer_id=OuterRef("customer_id"), unit_type=OuterRef("unit_type")))
        )
        .values("customer__code", "unit_type")
        .annotate(total=Sum("quantity"))
        .exclude(total=0)
        .order_by()
    )
    drifts += [
        {
            "kind": "units",
            "customer": o["customer__code"],
            "unit_type": o["unit_type"],
            "materialized": None,
            "ledger": o["total"],
        }
        for o in orphans
    ]
    return UnitBalance.objects.count(), drifts


def ledgers_verify() -> LedgerVerification:
    """Recompute node stock, customer balances and unit balances from their ledgers and
    store the result as a :class:`LedgerVerification` (drifts listed, none fixed).

    Read-only on the ledgers and materialized values; takes no locks (a reconcile
    committing meanwhile changes a value and its movements in one transaction, so a
    statement sees both or neither). Not idempotent by design: each run is one record.
    ``balance_rows_checked`` counts customer balances plus unit balances.
    """
    started_at = timezone.now()
    stock_checked, stock = stock_drifts()
    balance_checked, balances = balance_drifts()
    units_checked, units = unit_drifts()
    drifts = stock + balances + units
    return LedgerVerification.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        stock_rows_checked=stock_checked,
        balance_rows_checked=balance_checked + units_checked,
        drift_count=len(drifts),
        drifts=drifts,
    )
