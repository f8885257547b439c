"""Reads about nodes and terminals: what a terminal needs to behave online and offline."""

from __future__ import annotations

from typing import Any

from billing.invoicing import invoicing_warnings_for_terminal, today_bogota
from billing.models import InvoiceResolution
from nodes.models import Node, NumberingLevel, Terminal
from paygo.wire_format import business_time_str

# What works offline, per DESIGN.md's capability table. Only the two node flags and the
# numbering level vary; the rest is fixed by how offline selling works (no live data).
OFFLINE_FIXED: dict[str, Any] = {
    "comandas": "deferred",  # appear in the kitchen only once the sale is synced
    "product_blocks": False,
    "daily_max_consumption": False,
    "self_service": False,
    "consumable_units": False,
}


def node_offline_capabilities(*, node: Node) -> dict[str, Any]:
    """The ``offline`` block of ``GET /pos/config`` for a terminal of ``node``.

    Offline invoices are numbered locally only when consecutives are kept per register:
    registers sharing a node or company range would hand out the same numbers.
    """
    local_numbering = node.invoice_numbering_level == NumberingLevel.TERMINAL
    return {
        "closed_inventory_sales": node.allow_offline_closed_inventory_sales,
        "paygo_balance_sales": node.use_last_balance_offline,
        **OFFLINE_FIXED,
        "invoice_numbering": "local" if local_numbering else "deferred",
    }


def terminal_active_resolution(*, terminal: Terminal) -> InvoiceResolution | None:
    """The terminal's own active DIAN resolution (terminal-level numbering), or None.

    When several are active, the one with the lowest range that still has numbers left
    comes first; an exhausted range is only returned when nothing else is active, so the
    terminal sees the state it is in. One query.
    """
    resolutions = list(
        InvoiceResolution.objects.filter(terminal=terminal, level=NumberingLevel.TERMINAL, active=True).order_by(
            "range_from", "pk"
        )
    )
    for resolution in resolutions:
        if resolution.next_number <= resolution.range_to:
            return resolution
    return resolutions[-1] if resolutions else None


def invoicing_warnings_for(terminal: Terminal) -> list[str]:
    """Messages (Spanish) about the terminal's invoicing the cashier should see, today.

    The resolution that numbers the terminal's sales (its own, its node's or its
    institution's, per the numbering level): a range at 90 % or more, exhausted, a
    resolution expiring within 30 days or expired, or none at all
    (:func:`billing.invoicing.invoicing_warnings_for_terminal`). Kitchen terminals: none.
    ``GET /pos/config`` passes the list through unchanged. Read-only; one query when all
    is well, two or three when it explains a missing resolution.
    """
    return invoicing_warnings_for_terminal(terminal=terminal, today=today_bogota())


def terminal_config(*, terminal: Terminal) -> dict[str, Any]:
    """Everything ``GET /api/v1/pos/config`` answers, for ``terminal``.

    Expects ``terminal.node`` loaded (authentication selects it). Queries: one for the
    resolution at terminal level, and one (more when something is wrong) for the warnings.
    """
    node = terminal.node
    invoicing: dict[str, Any] = {"numbering_level": node.invoice_numbering_level}
    if node.invoice_numbering_level == NumberingLevel.TERMINAL:
        resolution = terminal_active_resolution(terminal=terminal)
        invoicing["resolution"] = (
            {
                "number": resolution.number,
                "prefix": resolution.prefix,
                "range_from": resolution.range_from,
                "range_to": resolution.range_to,
                "valid_until": resolution.valid_until,
                "next_number": resolution.next_number,
            }
            if resolution is not None
            else None
        )
    invoicing["warnings"] = invoicing_warnings_for(terminal)
    return {
        "server_time": business_time_str(),
        "terminal": {"code": terminal.code, "name": terminal.name, "kind": terminal.kind},
        "node": {
            "code": node.code,
            "name": node.name,
            "allow_offline_closed_inventory_sales": node.allow_offline_closed_inventory_sales,
            "use_last_balance_offline": node.use_last_balance_offline,
            "balance_sync_interval_seconds": node.balance_sync_interval_seconds,
        },
        "offline": node_offline_capabilities(node=node),
        "invoicing": invoicing,
    }
