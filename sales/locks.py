"""Every row lock a sale takes, in one place and one order.

Order: the customer row first, then the node-stock rows by ``pk``. Any other code that
locks both (reconciliation included) must take them in this order, so two transactions
never wait on each other in a cycle. Must run inside a transaction; the locks are held
until it ends. On SQLite ``select_for_update`` is a no-op: the settings open every
transaction as IMMEDIATE, which already serializes writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from billing.models import Customer
from inventory.models import NodeStock


@dataclass(frozen=True)
class SaleLockedRows:
    """What the locked rows held when the lock was granted (the latest committed values)."""

    customer_balance: Decimal | None = None
    # product id -> quantity at the node; a product with no row yet has no stock.
    stock: dict[int, Decimal] = field(default_factory=dict)


def sale_rows_lock(*, customer_id: int | None, node_id: int, product_ids: Iterable[int]) -> SaleLockedRows:
    """Lock the customer and the node-stock rows a sale touches (``SELECT … FOR NO KEY UPDATE``).

    Reading the values in the same statement as the lock makes them the committed values
    a concurrent sale left behind, not a stale snapshot.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sale_rows_lock must run inside a transaction")
    balance = None
    if customer_id is not None:
        # NO KEY UPDATE: still excludes every other writer of the customer (balance UPDATEs
        # take the same lock), but not the FOR KEY SHARE that inserting a row referencing
        # the customer takes (a sale, a movement: paygo.statement_keys), whenever it is taken.
        # A plain FOR UPDATE made a batch committing sales of this customer wait on us
        # while holding its terminal row, which we update next: a deadlock. The explicit
        # order keeps Customer's default ordering from joining (and locking) the institution.
        balance = (
            Customer.objects.select_for_update(no_key=True)
            .filter(pk=customer_id)
            .order_by("pk")
            .values_list("balance", flat=True)
            .first()
        )
    stock: dict[int, Decimal] = {}
    ids = sorted(set(product_ids))
    if ids:
        rows = (
            NodeStock.objects.select_for_update(no_key=True)
            .filter(node_id=node_id, product_id__in=ids)
            .order_by("pk")
            .values_list("product_id", "quantity")
        )
        stock = dict(rows)
    return SaleLockedRows(customer_balance=balance, stock=stock)
