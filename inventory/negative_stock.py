"""Finance resolving a negative-stock event: a stock movement plus the event's closing.

Negative stock is never fixed by editing node stock (DESIGN principle 2): finance records
either a physical count (the movement that brings the stock to what was counted) or an
adjustment quantity, and the event keeps who resolved it, when, why, and that movement.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.models import NegativeStockEvent, NegativeStockStatus, StockMovementKind
from inventory.services import stock_count_record, stock_movement_record
from paygo.errors import ApplicationError


class NegativeStockResolveError(ApplicationError):
    code = "invalid_negative_stock_resolution"


@transaction.atomic
def negative_stock_event_resolve(
    *,
    event: NegativeStockEvent,
    user,
    counted: Decimal | None = None,
    adjustment: Decimal | None = None,
    note: str,
) -> NegativeStockEvent:
    """Resolve an open event with a physical count or an adjustment, and a required note.

    Exactly one of ``counted`` (a physical count, ≥ 0: appends the ``count`` movement that
    brings the node's stock to it; none when stock already equals it) or ``adjustment``
    (a non-zero ``adjustment`` movement) is given.

    Locks: the event row (``FOR UPDATE``) first, then the node-stock row inside
    :func:`stock_count_record`, so two people resolving the same event at once produce one
    movement: the second sees it resolved and gets an error. Not idempotent by design (a
    resolved event refuses a second resolution). Side effects: a stock movement and its
    node-stock update; the event's change is recorded by its simple-history audit trail,
    attributed to ``user``.
    """
    note = (note or "").strip()
    if not note:
        raise NegativeStockResolveError("La nota de resolución es obligatoria.")
    if (counted is None) == (adjustment is None):
        raise NegativeStockResolveError("Indique un conteo físico o una cantidad de ajuste (solo uno).")
    locked = NegativeStockEvent.objects.select_for_update().select_related("node", "product").get(pk=event.pk)
    if locked.status != NegativeStockStatus.OPEN:
        raise NegativeStockResolveError("Este evento ya fue resuelto.")

    if counted is not None:
        movement = stock_count_record(
            node=locked.node,
            product=locked.product,
            counted=Decimal(counted),
            user=user,
            note=f"Conteo físico al resolver inventario negativo #{locked.pk}: {note}",
        )
    else:
        if Decimal(adjustment) == 0:
            raise NegativeStockResolveError("El ajuste no puede ser cero.")
        movement = stock_movement_record(
            node=locked.node,
            product=locked.product,
            quantity=Decimal(adjustment),
            kind=StockMovementKind.ADJUSTMENT,
            user=user,
            note=f"Ajuste al resolver inventario negativo #{locked.pk}: {note}",
        )

    locked.status = NegativeStockStatus.RESOLVED
    locked.resolved_by = user
    locked.resolved_at = timezone.now()
    locked.resolution_note = note
    locked.resolution_movement = movement
    # simple-history takes the user from the request in the admin; a service may run
    # outside one (shell, tests), so it says who explicitly.
    locked._history_user = user
    locked.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note", "resolution_movement"])
    return locked
