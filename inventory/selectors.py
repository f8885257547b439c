"""Reads of products and stock."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Subquery

from inventory.models import NodeStock, Product
from nodes.models import Node
from paygo.wire_format import money_str, quantity_str


def node_catalog(*, node: Node) -> list[dict[str, Any]]:
    """The products of the node's institution with their stock at ``node``, for terminals.

    One query whatever the number of products: stock comes as a correlated subquery on
    the unique (node, product) row. ``stock`` is null for products without closed
    inventory, and ``"0"`` for a tracked product the node never received.
    Inactive products are included (with ``active: false``) so terminals drop them.
    """
    stock_here = NodeStock.objects.filter(node_id=node.pk, product_id=OuterRef("pk")).values("quantity")[:1]
    rows = (
        Product.objects.filter(institution_id=node.institution_id)
        .annotate(stock_here=Subquery(stock_here))
        .order_by("sku")
        .values_list(
            "sku", "name", "price", "tracks_inventory", "stock_here", "requires_preparation", "unit_type", "active"
        )
    )
    return [
        {
            "sku": sku,
            "name": name,
            "price": money_str(price),
            "tracks_inventory": tracks,
            "stock": (quantity_str(stock) if stock is not None else "0") if tracks else None,
            "requires_preparation": prep,
            "unit_type": unit_type or None,
            "active": active,
        }
        for sku, name, price, tracks, stock, prep, unit_type, active in rows
    ]
