"""Every row lock reconciliation takes, in one place and always in ``pk`` order.

Order of acquisition within one reconcile transaction (never the other way round):

1. the batch of sales (``FOR NO KEY UPDATE SKIP LOCKED``: two workers split the work
   instead of waiting on each other; *no key* so that another reconcile may still insert
   rows referencing these sales — a flag, an episode membership — without waiting, which
   with a plain ``FOR UPDATE`` deadlocks against the node lock);
2. the nodes of those sales (serializes stock, negative-stock and sequence-gap
   recomputation per node);
3. the customers of those sales (serializes balance, overdraft and daily-total
   recomputation per customer, across nodes);
4. the node-stock rows the chunk's stock movements increment. An online sale locks its
   customer and then these rows (:mod:`sales.locks`): a chunk that took the stock rows
   first and then waited for that customer closed a cycle with it.

Nodes and customers are locked ``FOR NO KEY UPDATE``, like the sales: it excludes every
other reconcile and every writer of those rows, but not the ``FOR KEY SHARE`` that
inserting a row referencing them takes (:mod:`paygo.statement_keys` when the rows are
inserted, a deferred foreign key at COMMIT), when an ingest or online-sale transaction
already holds its other locks; a plain ``FOR UPDATE`` here made it wait on us while we
waited on it.

On SQLite ``select_for_update`` is a no-op: the embedded default opens every transaction
``IMMEDIATE``, which already serializes writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from billing.models import Customer
from nodes.models import Node
from sales.models import Sale


def unreconciled_sales_lock(*, sale_ids: Iterable[UUID] | None, limit: int, exclude: Iterable[UUID] = ()) -> list[UUID]:
    """Lock up to ``limit`` not-yet-reconciled sales (of ``sale_ids``, or any but
    ``exclude``) and return their ids, in ``pk`` order: the oldest by time of sale first.
    Sales another transaction holds are skipped, not awaited.

    Must run inside a transaction; the locks last until it ends.
    """
    queryset = Sale.objects.filter(reconciled_at__isnull=True)
    if sale_ids is not None:
        queryset = queryset.filter(pk__any=list(sale_ids))
    exclude = list(exclude)
    if exclude:
        queryset = queryset.exclude(pk__any=exclude)
    # Time order, not pk order (bench): the stock, balance and daily recomputations walk
    # the ledger from the chunk's earliest sale on, so chunks of random UUIDs each spanned
    # the whole backlog and reconciling N sales cost O(N²). SKIP LOCKED never waits, so the
    # order of this first lock does not matter for deadlocks; later locks stay in pk order.
    locked = list(
        queryset.select_for_update(skip_locked=True, no_key=True, of=("self",))
        .order_by("occurred_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sorted(locked)


def nodes_lock(*, node_ids: Iterable[int]) -> list[int]:
    """Lock the nodes (``SELECT … FOR NO KEY UPDATE`` in ``pk`` order) until the transaction ends."""
    ids = sorted(set(node_ids))
    if not ids:
        return []
    return list(
        Node.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)
    )


class LockedCustomer(NamedTuple):
    """What reconciliation reads of a customer, as it stands while locked."""

    institution_id: int
    overdraft_limit: Decimal
    daily_max: Decimal | None


def customers_lock(*, customer_ids: Iterable[int]) -> dict[int, LockedCustomer]:
    """Lock the customers (``SELECT … FOR NO KEY UPDATE`` in ``pk`` order) until the
    transaction ends, and return what reconciliation reads of them (their limits, their
    institution's balance feed): read in the locking statement, so no other query reads
    them again and nothing can change them before the transaction ends."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    return {
        pk: LockedCustomer(*row)
        for pk, *row in Customer.objects.select_for_update(no_key=True)
        .filter(pk__any=ids)
        .order_by("pk")
        .values_list("pk", "institution_id", "overdraft_limit", "daily_max")
    }
