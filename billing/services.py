"""Writes on customer accounts made by back-office staff: top-ups, corrections, units."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.ledger import balance_movements_post, unit_movements_post
from billing.models import BalanceMovement, BalanceMovementKind, Customer, UnitMovement, UnitMovementKind
from paygo.errors import ApplicationError


class AccountError(ApplicationError):
    code = "invalid_account_operation"


@transaction.atomic
def customer_balance_credit(
    *,
    customer: Customer,
    amount: Decimal,
    kind: str = BalanceMovementKind.TOPUP,
    user=None,
    note: str = "",
    occurred_at: datetime | None = None,
) -> BalanceMovement:
    """Record a top-up (positive) or a correction (either sign) as a ledger movement.

    Locks: the institution's balance feed row until commit. Not idempotent: each call is
    a new movement (staff actions, not retried by machines).
    """
    amount = Decimal(amount)
    if kind == BalanceMovementKind.SALE:
        raise AccountError("Las ventas se registran desde las cajas, no a mano.")
    if amount == 0:
        raise AccountError("El valor no puede ser cero.")
    if kind == BalanceMovementKind.TOPUP and amount < 0:
        raise AccountError("Una recarga debe ser positiva; use una corrección para descontar.")
    movement = BalanceMovement(
        customer=customer,
        kind=kind,
        amount=amount,
        occurred_at=occurred_at or timezone.now(),
        created_by=user,
        note=note,
    )
    (created,) = balance_movements_post(movements=[movement])
    return created


@transaction.atomic
def customer_units_add(
    *, customer: Customer, unit_type: str, quantity: int, user=None, note: str = "", occurred_at=None
) -> UnitMovement:
    """Record a purchase (positive) or correction of consumable units as a ledger movement."""
    if quantity == 0:
        raise AccountError("La cantidad no puede ser cero.")
    movement = UnitMovement(
        customer=customer,
        unit_type=unit_type,
        kind=UnitMovementKind.PURCHASE if quantity > 0 else UnitMovementKind.CORRECTION,
        quantity=quantity,
        occurred_at=occurred_at or timezone.now(),
        created_by=user,
        note=note,
    )
    (created,) = unit_movements_post(movements=[movement])
    return created
