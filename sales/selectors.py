"""Reads of sales for terminals (contract §4b)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404

from nodes.models import Terminal
from sales.models import QuarantinedSale, QuarantineStatus, Sale


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def _quantity(value) -> str:
    # "2.000" -> "2", "0.250" -> "0.25": the terminal's own notation, without float noise.
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def sale_output(sale: Sale) -> dict[str, Any]:
    """The §4b representation of a stored sale (expects lines, payments, flags prefetched)."""
    resolution = sale.invoice_resolution
    invoice = None
    if resolution is not None and sale.invoice_number is not None:
        invoice = {
            "prefix": sale.invoice_prefix,
            "number": sale.invoice_number,
            "resolution": resolution.number,
            "range_from": resolution.range_from,
            "range_to": resolution.range_to,
        }
    return {
        "id": str(sale.id),
        "status": "accepted",
        "reconciled": sale.reconciled_at is not None,
        "flags": sorted(flag.code for flag in sale.flags.all()),
        "invoice": invoice,
        "seq": sale.seq,
        "occurred_at": sale.occurred_at.isoformat(),
        "offline": sale.offline,
        "customer": sale.customer.code if sale.customer_id else None,
        "total": _money(sale.total),
        "lines": [
            {
                "sku": line.product.sku,
                "quantity": _quantity(line.quantity),
                "unit_price": _money(line.unit_price),
                "total": _money(line.total),
            }
            for line in sale.lines.all()
        ],
        "payments": [
            {"method": p.method, "amount": _money(p.amount), "unit_type": p.unit_type or None}
            for p in sale.payments.all()
        ],
    }


def sale_get_for_terminal(*, terminal: Terminal, sale_id: uuid.UUID | str) -> dict[str, Any]:
    """The sale ``sale_id`` as the terminal that made it sees it; ``Http404`` for anyone else.

    A sale that was rejected and sits in quarantine (and was never stored) reads as
    ``rejected`` with its errors, so a terminal that lost the batch answer can find out.
    """
    try:
        sale_uuid = uuid.UUID(str(sale_id))
    except ValueError as exc:
        raise Http404 from exc
    sale = (
        Sale.objects.filter(pk=sale_uuid, terminal=terminal)
        .select_related("invoice_resolution", "customer")
        .prefetch_related("lines__product", "payments", "flags")
        .first()
    )
    if sale is not None:
        return sale_output(sale)
    quarantined = (
        QuarantinedSale.objects.filter(terminal=terminal, sale_id__in={str(sale_id), str(sale_uuid)})
        .exclude(status=QuarantineStatus.DISCARDED)
        .order_by("-received_at", "-pk")
        .first()
    )
    if quarantined is None or Sale.objects.filter(pk=sale_uuid).exists():
        # Another terminal's sale with this id (a conflict) is not this terminal's to read.
        raise Http404
    return {
        "id": str(sale_uuid),
        "status": "rejected",
        "errors": quarantined.errors,
        "reconciled": False,
        "flags": [],
        "invoice": None,
        "lines": [],
        "payments": [],
    }
