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


def stored_sale_create(spec: SaleSpec) -> Sale:
    """Store one sale as ingest does (or return the stored one for a duplicate id)."""
    (sale,) = stored_sales_create([spec])
    return sale


@transaction.atomic
def stored_sales_create(specs: list[SaleSpec]) -> list[Sale]:
    """Store sales as one ingest batch does: one transaction, bulk inserts; a sale id
    already stored (or repeated in the batch) is a duplicate and stores nothing new."""
    ids = [spec.id for spec in specs]
    stored = Sale.objects.in_bulk(ids)
    terminals = {
        t.code: t for t in Terminal.objects.select_related("node").filter(code__in={s.terminal for s in specs})
    }
    institution_ids = {t.node.institution_id for t in terminals.values()}
    customers = {
        (c.institution_id, c.code): c
        for c in Customer.objects.filter(institution_id__in=institution_ids, code__in={s.customer for s in specs})
    }
    products = {(p.institution_id, p.sku): p for p in Product.objects.filter(institution_id__in=institution_ids)}
    next_seq = {
        row["terminal_id"]: row["m"]
        for row in Sale.objects.filter(terminal__in=terminals.values()).values("terminal_id").annotate(m=Max("seq"))
    }
    new_sales: list[Sale] = []
    new_lines: list[SaleLine] = []
    new_payments: list[Payment] = []
    for spec in specs:
        if spec.id in stored:
            continue
        terminal = terminals[spec.terminal]
        institution_id = terminal.node.institution_id
        seq = spec.seq
        if seq is None:
            seq = next_seq.get(terminal.pk, 0) + 1
        next_seq[terminal.pk] = max(seq, next_seq.get(terminal.pk, 0))
        lines = []
        for position, line in enumerate(spec.lines):
            product = products[(institution_id, line[0])]
            quantity = Decimal(str(line[1]))
            unit_price = Decimal(str(line[2])) if len(line) > 2 else product.price
            lines.append((position, product, quantity, unit_price))
        total = sum((q * p for _, _, q, p in lines), Decimal("0"))
        payments = spec.payments if spec.payments is not None else (("cash", total),)
        sale = Sale(
            id=spec.id,
            institution_id=institution_id,
            node=terminal.node,
            terminal=terminal,
            customer=customers[(institution_id, spec.customer)] if spec.customer else None,
            seq=seq,
            occurred_at=spec.occurred_at,
            received_at=spec.received_at or timezone.now(),
            business_date=spec.occurred_at.astimezone(BOGOTA).date(),
            offline=spec.offline,
            total=total,
            payload_hash=hashlib.sha256(str(spec.id).encode()).hexdigest(),
        )
        stored[spec.id] = sale
        new_sales.append(sale)
        new_lines.extend(
            SaleLine(sale=sale, position=pos, product=product, quantity=q, unit_price=price, total=q * price)
            for pos, product, q, price in lines
        )
        new_payments.extend(
            Payment(
                sale=sale,
                position=pos,
                method=p[0],
                amount=Decimal(str(p[1])),
                unit_type=p[2] if len(p) > 2 else "",
            )
            for pos, p in enumerate(payments)
        )
    Sale.objects.bulk_create(new_sales)
    SaleLine.objects.bulk_create(new_lines)
    Payment.objects.bulk_create(new_payments)
    for sale in new_sales:
        if not sale.offline:
            _online_movements(
                sale,
                [line for line in new_lines if line.sale is sale],
                [payment for payment in new_payments if payment.sale is sale],
            )
    return [stored[spec.id] for spec in specs]


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


def bogota(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """An aware datetime in Bogotá time (stored in UTC)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=BOGOTA)
