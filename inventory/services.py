"""Writes on stock made by people: receipts, counts and adjustments (never edits)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.ledger import stock_movements_post
from inventory.models import NodeStock, Product, StockMovement, StockMovementKind
from inventory.reconcile import negative_stock_recompute
from nodes.models import Node
from paygo.errors import ApplicationError
from sales.reconcile_flags import sale_flags_apply
from sales.reconcile_locks import nodes_lock


class StockError(ApplicationError):
    code = "invalid_stock_operation"


@transaction.atomic
def stock_movement_record(
    *,
    node: Node,
    product: Product,
    quantity: Decimal,
    kind: str = StockMovementKind.RECEIPT,
    user=None,
    note: str = "",
    occurred_at: datetime | None = None,
) -> StockMovement:
    """Record a receipt, an adjustment or an initial stock as a ledger movement.

    The movement takes its place in the node's timeline at ``occurred_at`` (a receipt
    entered after the fact may be hours old): the negative-stock episodes and flags of
    the product are recomputed from there, under the node lock reconciliation takes, so
    a receipt ends an episode at its own time and later sales are judged against it.
    """
    quantity = Decimal(quantity)
    stock_movement_check(node=node, product=product, quantity=quantity, kind=kind)
    nodes_lock(node_ids=[node.pk])
    movement = StockMovement(
        node=node,
        product=product,
        kind=kind,
        quantity=quantity,
        occurred_at=occurred_at or timezone.now(),
        created_by=user,
        note=note,
    )
    (created,) = stock_movements_post(movements=[movement])
    sale_flags_apply(evaluations=[negative_stock_recompute(pairs_since={(node.pk, product.pk): created.occurred_at})])
    return created


def stock_movement_check(*, node: Node, product: Product, quantity: Decimal, kind: str) -> None:
    """Raise :class:`StockError` if a manual movement is not allowed."""
    if kind == StockMovementKind.SALE:
        raise StockError("Las ventas mueven el inventario al conciliarse, no a mano.")
    if not product.tracks_inventory:
        raise StockError(f"El producto {product.sku} no maneja inventario cerrado.")
    if product.institution_id != node.institution_id:
        raise StockError("El producto y el nodo son de instituciones distintas.")
    if quantity == 0:
        raise StockError("La cantidad no puede ser cero.")


@transaction.atomic
def stock_count_record(
    *, node: Node, product: Product, counted: Decimal, user=None, note: str = "", occurred_at=None
) -> StockMovement | None:
    """Record a physical count: appends the movement that brings stock to ``counted``.

    Locks: the node, then the node-stock row (``FOR UPDATE``) so the difference is
    computed against the value no concurrent reconcile is changing. Returns None if nothing differs.
    """
    counted = Decimal(counted)
    if counted < 0:
        raise StockError("Un conteo físico no puede ser negativo.")
    # The node before its stock row, as reconciliation takes them (node lock, then the
    # stock rows it increments): the other order could deadlock with a running chunk.
    nodes_lock(node_ids=[node.pk])
    row = NodeStock.objects.select_for_update().filter(node=node, product=product).first()
    current = row.quantity if row else Decimal("0")
    difference = counted - current
    if difference == 0:
        return None
    return stock_movement_record(
        node=node,
        product=product,
        quantity=difference,
        kind=StockMovementKind.COUNT,
        user=user,
        note=note or f"Conteo físico: {counted}",
        occurred_at=occurred_at,
    )
