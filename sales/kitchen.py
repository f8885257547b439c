"""Comandas: created for reconciled sales with lines that need preparation, read and
moved forward by the node's kitchen terminals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import status as http_status

from nodes.models import Node
from paygo.bulk_insert import columns_insert
from paygo.errors import ApplicationError
from sales.models import Comanda, ComandaStatus

# Forward order of a comanda's life; moving back is refused, skipping forward allowed.
COMANDA_STATUS_ORDER = [ComandaStatus.PENDING, ComandaStatus.IN_PROGRESS, ComandaStatus.READY, ComandaStatus.DELIVERED]


class ComandaNotFound(ApplicationError):
    code = "not_found"
    status_code = http_status.HTTP_404_NOT_FOUND
    default_message = "Comanda no encontrada."


class ComandaStatusBackwards(ApplicationError):
    code = "comanda_status_backwards"
    status_code = http_status.HTTP_409_CONFLICT
    default_message = "Una comanda solo avanza: no puede volver a un estado anterior."


@dataclass(frozen=True)
class ComandaSale:
    """What a comanda needs of a sale: its preparation lines as (sku, name, quantity)."""

    sale_id: UUID
    node_id: int
    occurred_at: datetime
    received_at: datetime
    offline: bool
    items: list[tuple[str, str, Decimal]]


def comandas_create(*, sales: Iterable[ComandaSale]) -> int:
    """Create one comanda per sale with preparation lines (``late`` for offline sales).

    Set-based: one ``INSERT … ON CONFLICT DO NOTHING``; ``Comanda.sale`` is unique, so a
    rerun or a concurrent run leaves one comanda per sale. Locks: none. Returns the
    number of sales considered.
    """
    rows = [sale for sale in sales if sale.items]
    columns_insert(
        Comanda,
        {
            "sale": [sale.sale_id for sale in rows],
            "node": [sale.node_id for sale in rows],
            "occurred_at": [sale.occurred_at for sale in rows],
            "received_at": [sale.received_at for sale in rows],
            "late": [sale.offline for sale in rows],
            "status": [ComandaStatus.PENDING.value] * len(rows),
            "items": [
                [{"sku": sku, "name": name, "quantity": str(quantity)} for sku, name, quantity in sale.items]
                for sale in rows
            ],
        },
        on_conflict_do_nothing=True,
    )
    return len(rows)


def node_comandas(*, node: Node, status: str | None = None) -> QuerySet[Comanda]:
    """The node's comandas in time of sale; without ``status``, those not yet delivered."""
    queryset = Comanda.objects.filter(node=node)
    queryset = queryset.filter(status=status) if status else queryset.exclude(status=ComandaStatus.DELIVERED)
    return queryset.order_by("occurred_at", "pk")


@transaction.atomic
def comanda_status_advance(*, node: Node, comanda_id: int, status: str) -> Comanda:
    """Move a comanda of ``node`` forward to ``status``.

    Locks: the comanda row (``FOR UPDATE``) so two kitchen screens cannot move it
    backwards between them. Idempotent: asking for the current status changes nothing.
    Raises :class:`ComandaNotFound` (also for another node's comanda) or
    :class:`ComandaStatusBackwards`.
    """
    comanda = Comanda.objects.select_for_update().filter(pk=comanda_id, node=node).first()
    if comanda is None:
        raise ComandaNotFound()
    current = COMANDA_STATUS_ORDER.index(comanda.status)
    wanted = COMANDA_STATUS_ORDER.index(status)
    if wanted < current:
        raise ComandaStatusBackwards(
            f"La comanda está «{comanda.get_status_display()}» y no puede volver a «{ComandaStatus(status).label}».",
            details={"current": comanda.status, "requested": status},
        )
    if wanted > current:
        comanda.status = status
        comanda.status_changed_at = timezone.now()
        comanda.save(update_fields=["status", "status_changed_at"])
    return comanda
