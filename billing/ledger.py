"""Writers of the balance and unit ledgers. The only code that changes a customer's
balance or units: every change is an appended movement plus a set-based increment of the
materialized value, in one transaction, and a bump of the balance feed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.feed import customers_feed_bump, customers_feed_seqs
from billing.models import (
    BalanceMovement,
    BalanceMovementKind,
    Customer,
    UnitBalance,
    UnitMovement,
    UnitMovementKind,
)
from paygo.bulk_insert import columns_insert, objects_insert
from paygo.increments import increments_apply, increments_upsert


def balance_movements_post(*, movements: list[BalanceMovement]) -> list[BalanceMovement]:
    """Append balance movements and apply them to the customers' balances.

    One INSERT for the movements, one UPDATE for all balances (``balance + delta`` in SQL,
    joined from arrays by :func:`paygo.increments.increments_apply`,
    never read-modify-write in Python), one feed bump per institution. Not idempotent by
    itself: callers guarantee uniqueness (a sale payment has at most one movement, enforced
    by a unique constraint, so a duplicate raises ``IntegrityError`` and rolls back).
    """
    if not movements:
        return []
    with transaction.atomic():
        created = objects_insert(BalanceMovement, movements)
        _balances_apply((m.customer_id, m.amount) for m in movements)
    return created


def sale_balance_movements_post(
    *,
    payment_ids: list[int],
    customer_ids: list[int],
    amounts: list[Decimal],
    occurred_at: list[datetime],
    institution_of: Mapping[int, int] | None = None,
    also_changed: Collection[int] = (),
) -> int:
    """Append one ``sale`` movement of ``-amount`` per paygo payment (given column by
    column) and apply them, skipping payments that already have their movement.

    The skip is the unique ``BalanceMovement.payment`` itself (``INSERT … ON CONFLICT DO
    NOTHING RETURNING``): no read of existing movements, no model instances; only the
    rows really inserted change balances and the feed. Zero amounts are the caller's to
    leave out (``balance_movement_not_zero``). ``institution_of``: the customers'
    institutions, from a caller that holds their locks (:func:`~billing.feed.customers_feed_seqs`).
    ``also_changed``: customers whose units the caller changed in this transaction
    (:func:`sale_unit_movements_post`'s ``changed``), bumped in the feed with the
    balances: one sequence and one new row version for both. Returns the number of
    movements inserted.
    """
    if not payment_ids and not also_changed:
        return 0
    with transaction.atomic():
        inserted = []
        if payment_ids:
            inserted = columns_insert(
                BalanceMovement,
                {
                    "customer": customer_ids,
                    "kind": [BalanceMovementKind.SALE] * len(payment_ids),
                    "amount": [-amount for amount in amounts],
                    "occurred_at": occurred_at,
                    "created_at": [timezone.now()] * len(payment_ids),
                    "payment": payment_ids,
                    "note": [""] * len(payment_ids),
                },
                returning=("customer", "amount"),
                on_conflict_do_nothing=True,
            )
        _balances_apply(inserted, institution_of=institution_of, also_changed=also_changed)
    return len(inserted)


def _balances_apply(
    movements: Iterable[tuple[int, Decimal]],
    *,
    institution_of: Mapping[int, int] | None = None,
    also_changed: Collection[int] = (),
) -> None:
    """Add ``(customer, amount)`` movements to the balances and bump the feed: the
    customers' feed sequences first (:func:`~billing.feed.customers_feed_seqs`, which locks
    the customers, then the feed rows until commit), then balances and ``change_seq`` in
    one UPDATE (one new row version per customer), ``also_changed`` with them."""
    deltas: dict[int, Decimal] = defaultdict(Decimal)
    for customer_id, amount in movements:
        deltas[customer_id] += amount
    for customer_id in also_changed:
        deltas[customer_id] += 0
    if not deltas:
        return
    seqs = customers_feed_seqs(customer_ids=deltas, institution_of=institution_of)
    increments_apply(Customer, "balance", deltas, assign={"change_seq": seqs})


def unit_movements_post(*, movements: list[UnitMovement]) -> list[UnitMovement]:
    """Append unit movements and apply them to the customers' unit balances (set-based)."""
    if not movements:
        return []
    with transaction.atomic():
        created = objects_insert(UnitMovement, movements)
        _units_apply((m.customer_id, m.unit_type, m.quantity) for m in movements)
    return created


def sale_unit_movements_post(
    *,
    payment_ids: list[int],
    customer_ids: list[int],
    unit_types: list[str],
    quantities: list[int],
    occurred_at: list[datetime],
    institution_of: Mapping[int, int] | None = None,
    changed: set[int] | None = None,
) -> int:
    """Append one ``sale`` movement of ``-quantity`` units per units payment, skipping
    payments that already have theirs (unique ``UnitMovement.payment``, as
    :func:`sale_balance_movements_post`, ``institution_of`` too). With ``changed`` the
    customers whose units changed are added to it instead of bumped in the feed here:
    the caller bumps them with their balances (:func:`sale_balance_movements_post`'s
    ``also_changed``), in the same transaction. Returns the number of movements inserted."""
    if not payment_ids:
        return 0
    with transaction.atomic():
        inserted = columns_insert(
            UnitMovement,
            {
                "customer": customer_ids,
                "unit_type": unit_types,
                "kind": [UnitMovementKind.SALE] * len(payment_ids),
                "quantity": [-quantity for quantity in quantities],
                "occurred_at": occurred_at,
                "created_at": [timezone.now()] * len(payment_ids),
                "payment": payment_ids,
                "note": [""] * len(payment_ids),
            },
            returning=("customer", "unit_type", "quantity"),
            on_conflict_do_nothing=True,
        )
        _units_apply(inserted, institution_of=institution_of, changed=changed)
    return len(inserted)


def _units_apply(
    movements: Iterable[tuple[int, str, int]],
    *,
    institution_of: Mapping[int, int] | None = None,
    changed: set[int] | None = None,
) -> None:
    """Add ``(customer, unit type, quantity)`` movements to the unit balances (missing rows
    created with them: one ``INSERT … ON CONFLICT DO UPDATE``,
    :func:`paygo.increments.increments_upsert`) and bump the feed (or add the customers
    to ``changed``, for the caller to bump)."""
    deltas: dict[tuple[int, str], int] = defaultdict(int)
    for customer_id, unit_type, quantity in movements:
        deltas[(customer_id, unit_type)] += quantity
    if not deltas:
        return
    increments_upsert(UnitBalance, ("customer", "unit_type"), "quantity", deltas)
    customers = {c for c, _ in deltas}
    if changed is not None:
        changed.update(customers)
    else:
        customers_feed_bump(customer_ids=customers, institution_of=institution_of)
