"""Writers of the balance and unit ledgers. The only code that changes a customer's
balance or units: every change is an appended movement plus a set-based increment of the
materialized value, in one transaction, and a bump of the balance feed."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import transaction

from billing.feed import customers_touch
from billing.models import BalanceMovement, Customer, UnitBalance, UnitMovement
from paygo.bulk_insert import objects_insert
from paygo.increments import increments_apply


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
        deltas: dict[int, Decimal] = defaultdict(Decimal)
        for movement in movements:
            deltas[movement.customer_id] += movement.amount
        increments_apply(Customer, "balance", deltas)
        by_institution: dict[int, list[int]] = defaultdict(list)
        for pk, institution_id in Customer.objects.filter(pk__in=deltas).values_list("pk", "institution_id"):
            by_institution[institution_id].append(pk)
        for institution_id in sorted(by_institution):
            customers_touch(institution_id=institution_id, customer_ids=by_institution[institution_id])
    return created


def unit_movements_post(*, movements: list[UnitMovement]) -> list[UnitMovement]:
    """Append unit movements and apply them to the customers' unit balances (set-based)."""
    if not movements:
        return []
    with transaction.atomic():
        created = objects_insert(UnitMovement, movements)
        deltas: dict[tuple[int, str], int] = defaultdict(int)
        for movement in movements:
            deltas[(movement.customer_id, movement.unit_type)] += movement.quantity
        UnitBalance.objects.bulk_create(
            [UnitBalance(customer_id=c, unit_type=u, quantity=0) for c, u in deltas],
            ignore_conflicts=True,
        )
        rows = UnitBalance.objects.filter(customer_id__in={c for c, _ in deltas}).values_list(
            "pk", "customer_id", "unit_type"
        )
        by_pk = {pk: deltas[(c, u)] for pk, c, u in rows if (c, u) in deltas}
        increments_apply(UnitBalance, "quantity", by_pk)
        by_institution: dict[int, list[int]] = defaultdict(list)
        customer_ids = {c for c, _ in deltas}
        for pk, institution_id in Customer.objects.filter(pk__in=customer_ids).values_list("pk", "institution_id"):
            by_institution[institution_id].append(pk)
        for institution_id in sorted(by_institution):
            customers_touch(institution_id=institution_id, customer_ids=by_institution[institution_id])
    return created
