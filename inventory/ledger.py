"""Writer of the stock ledger: the only code that changes a node's stock."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.models import NodeStock, StockMovement, StockMovementKind
from paygo.bulk_insert import columns_insert, objects_insert
from paygo.increments import increments_upsert


def stock_movements_post(*, movements: list[StockMovement]) -> list[StockMovement]:
    """Append stock movements and apply them to node stock, set-based.

    One INSERT for the movements, one INSERT … ON CONFLICT DO NOTHING for missing stock
    rows, one UPDATE ``quantity + delta`` for all. Callers guarantee uniqueness (a sale
    line has at most one movement, enforced by a unique constraint).
    """
    if not movements:
        return []
    with transaction.atomic():
        created = objects_insert(StockMovement, movements)
        _node_stock_apply((m.node_id, m.product_id, m.quantity) for m in movements)
    return created


def sale_stock_movements_post(
    *,
    sale_line_ids: list[int],
    node_ids: list[int],
    product_ids: list[int],
    quantities: list[Decimal],
    occurred_at: list[datetime],
) -> int:
    """Append one ``sale`` movement of ``-quantity`` per sale line (given column by column)
    and apply them to node stock, skipping lines that already have their movement.

    The skip is the unique ``sale_line`` itself (``INSERT … ON CONFLICT DO NOTHING
    RETURNING``): no read of existing movements, no model instances, and only the rows
    really inserted change the stock. Three statements whatever the number of lines
    (insert, missing stock rows, one increment). Returns the number of movements inserted.
    """
    if not sale_line_ids:
        return 0
    with transaction.atomic():
        inserted = columns_insert(
            StockMovement,
            {
                "node": node_ids,
                "product": product_ids,
                "kind": [StockMovementKind.SALE] * len(sale_line_ids),
                "quantity": [-quantity for quantity in quantities],
                "occurred_at": occurred_at,
                "created_at": [timezone.now()] * len(sale_line_ids),
                "sale_line": sale_line_ids,
                "note": [""] * len(sale_line_ids),
            },
            returning=("node", "product", "quantity"),
            on_conflict_do_nothing=True,
        )
        _node_stock_apply(inserted)
    return len(inserted)


def _node_stock_apply(movements: Iterable[tuple[int, int, Decimal]]) -> None:
    """Add ``(node, product, quantity)`` movements to node stock, creating the stock rows
    still missing: one ``INSERT … ON CONFLICT DO UPDATE`` for all
    (:func:`paygo.increments.increments_upsert`)."""
    deltas: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for node_id, product_id, quantity in movements:
        deltas[(node_id, product_id)] += quantity
    increments_upsert(NodeStock, ("node", "product"), "quantity", deltas, touched="updated_at")
