"""Writer of the stock ledger: the only code that changes a node's stock."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import transaction

from inventory.models import NodeStock, StockMovement
from paygo.bulk_insert import objects_insert
from paygo.increments import increments_apply


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
        deltas: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        for movement in movements:
            deltas[(movement.node_id, movement.product_id)] += movement.quantity
        NodeStock.objects.bulk_create(
            [NodeStock(node_id=n, product_id=p, quantity=Decimal("0")) for n, p in deltas],
            ignore_conflicts=True,
        )
        rows = NodeStock.objects.filter(
            node_id__in={n for n, _ in deltas}, product_id__in={p for _, p in deltas}
        ).values_list("pk", "node_id", "product_id")
        by_pk = {pk: deltas[(n, p)] for pk, n, p in rows if (n, p) in deltas}
        increments_apply(NodeStock, "quantity", by_pk)
    return created
