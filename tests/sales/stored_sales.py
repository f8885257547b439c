"""Sales stored exactly as ingest stores them: the reconcile service's real input.

Sale + SaleLine + Payment rows with ``reconciled_at`` NULL, ``business_date`` the Bogotá
date, node and institution from the terminal. An online sale (``offline=False``) also
gets the ledger movements ingest writes for it. Storing a sale id that exists already is
a duplicate delivery: nothing new is stored (as ingest answers ``duplicate``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.ledger import balance_movements_post, unit_movements_post
from billing.models import BalanceMovement, BalanceMovementKind, Customer, UnitMovement, UnitMovementKind
from inventory.ledger import stock_movements_post
from inventory.models import Product, StockMovement, StockMovementKind
from nodes.models import Terminal
from sales.models import Payment, Sale, SaleLine

BOGOTA = ZoneInfo("America/Bogota")


@dataclass(frozen=True)
class SaleSpec:
    """One sale as a terminal reports it. ``lines``: (sku, quantity[, unit_price]);
    ``payments``: (method, amount[, unit_type]); default one cash payment of the total."""

    terminal: str
    occurred_at: datetime
    lines: tuple[tuple, ...]
    payments: tuple[tuple, ...] | None = None
    customer: str | None = None
    offline: bool = True
    seq: int | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    received_at: datetime | None = None


@transaction.atomic
def stored_sale_create(spec: SaleSpec) -> Sale:
    """Store one sale as ingest does (or return the stored one for a duplicate id)."""
    existing = Sale.objects.filter(pk=spec.id).first()
    if existing is not None:
        return existing
    terminal = Terminal.objects.select_related("node").get(code=spec.terminal)
    node = terminal.node
    institution_id = node.institution_id
    customer = Customer.objects.get(institution_id=institution_id, code=spec.customer) if spec.customer else None
    seq = spec.seq
    if seq is None:
        seq = (Sale.objects.filter(terminal=terminal).aggregate(m=Max("seq"))["m"] or 0) + 1
    products = {p.sku: p for p in Product.objects.filter(institution_id=institution_id)}
    lines = []
    for position, line in enumerate(spec.lines):
        sku, quantity = line[0], Decimal(str(line[1]))
        product = products[sku]
        unit_price = Decimal(str(line[2])) if len(line) > 2 else product.price
        lines.append((position, product, quantity, unit_price))
    total = sum((q * p for _, _, q, p in lines), Decimal("0"))
    payments = spec.payments if spec.payments is not None else (("cash", total),)
    sale = Sale.objects.create(
        id=spec.id,
        institution_id=institution_id,
        node=node,
        terminal=terminal,
        customer=customer,
        seq=seq,
        occurred_at=spec.occurred_at,
        received_at=spec.received_at or timezone.now(),
        business_date=spec.occurred_at.astimezone(BOGOTA).date(),
        offline=spec.offline,
        total=total,
        payload_hash=hashlib.sha256(str(spec.id).encode()).hexdigest(),
    )
    sale_lines = SaleLine.objects.bulk_create(
        [
            SaleLine(sale=sale, position=pos, product=product, quantity=q, unit_price=price, total=q * price)
            for pos, product, q, price in lines
        ]
    )
    sale_payments = Payment.objects.bulk_create(
        [
            Payment(
                sale=sale,
                position=pos,
                method=p[0],
                amount=Decimal(str(p[1])),
                unit_type=p[2] if len(p) > 2 else "",
            )
            for pos, p in enumerate(payments)
        ]
    )
    if not spec.offline:
        _online_movements(sale, sale_lines, sale_payments)
    return sale


def _online_movements(sale: Sale, lines: list[SaleLine], payments: list[Payment]) -> None:
    """The ledger movements ingest writes for an online sale in the same transaction."""
    stock_movements_post(
        movements=[
            StockMovement(
                node_id=sale.node_id,
                product_id=line.product_id,
                kind=StockMovementKind.SALE,
                quantity=-line.quantity,
                occurred_at=sale.occurred_at,
                sale_line=line,
            )
            for line in lines
            if line.product.tracks_inventory
        ]
    )
    balance_movements_post(
        movements=[
            BalanceMovement(
                customer_id=sale.customer_id,
                kind=BalanceMovementKind.SALE,
                amount=-p.amount,
                occurred_at=sale.occurred_at,
                payment=p,
            )
            for p in payments
            if p.method == "paygo" and p.amount
        ]
    )
    unit_movements_post(
        movements=[
            UnitMovement(
                customer_id=sale.customer_id,
                unit_type=p.unit_type,
                kind=UnitMovementKind.SALE,
                quantity=-int(p.amount),
                occurred_at=sale.occurred_at,
                payment=p,
            )
            for p in payments
            if p.method == "units" and p.amount
        ]
    )


def stored_sales_create(specs: list[SaleSpec]) -> list[Sale]:
    return [stored_sale_create(spec) for spec in specs]


def bogota(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """An aware datetime in Bogotá time (stored in UTC)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=BOGOTA)
