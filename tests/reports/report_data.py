"""STAND-IN data builder for the report tests, until ingest and reconcile are merged.

The sales ingest (``sales.ingest.sale_batch_ingest``, the POS batch API) and the Celery
reconciliation (stock and balance ledgers, rule flags, negative-stock events, sequence
gaps, quarantine) are being written on other branches. The reports only read the rows
those services write, so until they are merged the report tests create those rows here,
shaped exactly as the services will:

- a sale as ingest stores it: ``Sale`` keyed by the terminal's UUID, ``business_date``
  the Bogotá day of ``occurred_at``, ``payload_hash`` of the canonical payload, lines and
  payments by position, the terminal's ``last_seen_at``/``last_upload_at`` bumped;
- reconciliation's effects through the REAL ledger writers (``stock_movements_post``,
  ``balance_movements_post``): a ``sale`` stock movement per tracked line and a ``sale``
  balance movement per payGO payment, then ``reconciled_at``;
- flags as ``SaleFlag(sale, code, detail)``, one per code;
- negative-stock events found by walking the node's stock ledger in time-of-sale order,
  identified by the sale that first took stock below zero (as the model documents);
- quarantine rows with the raw payload, the errors list and comma-joined ``error_codes``;
- sequence gaps and the heartbeat's ``reported_*`` fields on the terminal.

Everything lives in this one module on purpose: once the real services are on the
branch, replace these bodies with calls to them (post a batch through
``sale_batch_ingest``, run the reconcile task eagerly, post a heartbeat) and keep the
signatures, so the report tests do not change.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.ledger import balance_movements_post
from billing.models import BalanceMovement, BalanceMovementKind, Customer
from inventory.ledger import stock_movements_post
from inventory.models import NegativeStockEvent, NodeStock, Product, StockMovement, StockMovementKind
from nodes.models import Node, Terminal
from paygo.reporting import BUSINESS_TZ
from sales.models import (
    FlagCode,
    Payment,
    PaymentMethod,
    QuarantinedSale,
    QuarantineStatus,
    Sale,
    SaleFlag,
    SaleLine,
    SequenceGap,
)


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


@transaction.atomic
def sale_record(
    *,
    terminal: Terminal,
    occurred_at: datetime,
    lines: list[tuple[Product, Decimal | int] | tuple[Product, Decimal | int, Decimal]],
    customer: Customer | None = None,
    payments: list[tuple[str, Decimal]] | None = None,
    offline: bool = True,
    flags: list[str] | tuple[str, ...] = (),
    seq: int | None = None,
    received_at: datetime | None = None,
    known_balance: Decimal | None = None,
    reconcile: bool = True,
) -> Sale:
    """Store one sale as ingest would, and (``reconcile``) apply it as reconciliation would."""
    received_at = received_at or timezone.now()
    if seq is None:
        seq = (Sale.objects.filter(terminal=terminal).aggregate(m=Max("seq"))["m"] or 0) + 1
    priced = [(p, Decimal(q), Decimal(rest[0]) if rest else p.price) for p, q, *rest in lines]
    total = sum((q * price for _, q, price in priced), Decimal("0"))
    if payments is None:
        payments = [(PaymentMethod.PAYGO if customer else PaymentMethod.CASH, total)]
    sale_id = uuid.uuid4()
    payload = {
        "id": str(sale_id),
        "seq": seq,
        "occurred_at": occurred_at.isoformat(),
        "offline": offline,
        "customer": customer.code if customer else None,
        "lines": [{"sku": p.sku, "quantity": str(q), "unit_price": _money(price)} for p, q, price in priced],
        "payments": [{"method": m, "amount": _money(a)} for m, a in payments],
    }
    sale = Sale.objects.create(
        id=sale_id,
        institution=terminal.node.institution,
        node=terminal.node,
        terminal=terminal,
        customer=customer,
        seq=seq,
        occurred_at=occurred_at,
        received_at=received_at,
        business_date=occurred_at.astimezone(BUSINESS_TZ).date(),
        offline=offline,
        total=total,
        known_balance=known_balance,
        payload_hash=hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
    )
    sale_lines = SaleLine.objects.bulk_create(
        [
            SaleLine(sale=sale, position=i, product=p, quantity=q, unit_price=price, total=q * price)
            for i, (p, q, price) in enumerate(priced)
        ]
    )
    sale_payments = Payment.objects.bulk_create(
        [Payment(sale=sale, position=i, method=m, amount=Decimal(a)) for i, (m, a) in enumerate(payments)]
    )
    Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=received_at, last_upload_at=received_at)
    if reconcile:
        stock_movements_post(
            movements=[
                StockMovement(
                    node=terminal.node,
                    product=line.product,
                    kind=StockMovementKind.SALE,
                    quantity=-line.quantity,
                    occurred_at=occurred_at,
                    sale_line=line,
                )
                for line in sale_lines
                if line.product.tracks_inventory
            ]
        )
        balance_movements_post(
            movements=[
                BalanceMovement(
                    customer=customer,
                    kind=BalanceMovementKind.SALE,
                    amount=-payment.amount,
                    occurred_at=occurred_at,
                    payment=payment,
                )
                for payment in sale_payments
                if payment.method == PaymentMethod.PAYGO and payment.amount > 0
            ]
        )
        Sale.objects.filter(pk=sale.pk).update(reconciled_at=timezone.now())
    for code in flags:
        SaleFlag.objects.get_or_create(sale=sale, code=code, defaults={"detail": {}})
    return sale


@transaction.atomic
def negative_stock_events_detect(*, node: Node, product: Product) -> list[NegativeStockEvent]:
    """Walk the node's ledger for the product in time-of-sale order and record each period
    below zero, as reconciliation does; flags its sales ``negative_stock``."""
    movements = (
        StockMovement.objects.filter(node=node, product=product)
        .select_related("sale_line__sale")
        .order_by("occurred_at", "sale_line__sale__terminal_id", "sale_line__sale__seq", "id")
    )
    running = Decimal("0")
    events = []
    current: dict[str, Any] | None = None
    for movement in movements:
        before = running
        running += movement.quantity
        sale = movement.sale_line.sale if movement.sale_line_id else None
        if current is None and running < 0 and sale is not None:
            current = {
                "starting_sale": sale,
                "started_at": movement.occurred_at,
                "quantity_before": before,
                "quantity_after": running,
                "lowest": running,
                "sales": [sale],
                "ended_at": None,
            }
        elif current is not None and running < 0:
            current["lowest"] = min(current["lowest"], running)
            if sale is not None and sale not in current["sales"]:
                current["sales"].append(sale)
        elif current is not None and running >= 0:
            current["ended_at"] = movement.occurred_at
            events.append(current)
            current = None
    if current is not None:
        events.append(current)

    recorded = []
    for spec in events:
        event, _ = NegativeStockEvent.objects.update_or_create(
            node=node,
            product=product,
            starting_sale=spec["starting_sale"],
            defaults={
                "started_at": spec["started_at"],
                "quantity_before": spec["quantity_before"],
                "quantity_after": spec["quantity_after"],
                "lowest_quantity": spec["lowest"],
                "ended_at": spec["ended_at"],
            },
        )
        event.sales.set(spec["sales"])
        for sale in spec["sales"]:
            SaleFlag.objects.get_or_create(
                sale=sale,
                code=FlagCode.NEGATIVE_STOCK,
                defaults={"detail": {"sku": product.sku, "node": node.code}},
            )
        recorded.append(event)
    return recorded


def sequence_gap_record(*, terminal: Terminal, first_missing: int, last_missing: int) -> SequenceGap:
    return SequenceGap.objects.create(terminal=terminal, first_missing=first_missing, last_missing=last_missing)


def quarantined_sale_record(
    *,
    terminal: Terminal,
    errors: list[dict[str, str]],
    payload: dict[str, Any] | None = None,
    received_at: datetime | None = None,
    status: str = QuarantineStatus.PENDING,
) -> QuarantinedSale:
    """A rejected sale kept whole, as ingest quarantines it."""
    payload = payload or {
        "id": str(uuid.uuid4()),
        "seq": 999,
        "occurred_at": timezone.now().isoformat(),
        "offline": True,
        "customer": None,
        "lines": [{"sku": "SKU-NO-EXISTE", "quantity": "1", "unit_price": "1000.00"}],
        "payments": [{"method": "cash", "amount": "1000.00"}],
    }
    return QuarantinedSale.objects.create(
        sale_id=str(payload.get("id", "")),
        terminal=terminal,
        raw_payload=payload,
        errors=errors,
        error_codes=",".join(sorted({e["code"] for e in errors})),
        received_at=received_at or timezone.now(),
        status=status,
    )


def terminal_heartbeat_record(
    *,
    terminal: Terminal,
    seen_at: datetime | None,
    pending_sales: int | None = None,
    last_seq: int | None = None,
    balances_age_seconds: int | None = None,
) -> None:
    """What a heartbeat (or any authenticated request) leaves on the terminal."""
    Terminal.objects.filter(pk=terminal.pk).update(
        last_seen_at=seen_at,
        reported_pending_sales=pending_sales,
        reported_last_seq=last_seq,
        reported_balances_age_seconds=balances_age_seconds,
    )


# --- The scenario most report tests share -------------------------------------------------------


@dataclass
class ReportScenario:
    now: datetime
    terminals: dict[str, Terminal]
    products: dict[str, Product]
    customers: dict[str, Customer]
    sales: dict[str, Sale] = field(default_factory=dict)
    events: dict[str, NegativeStockEvent] = field(default_factory=dict)
    quarantined: dict[str, QuarantinedSale] = field(default_factory=dict)


def report_scenario() -> ReportScenario:
    """On top of the demo: negative stock at N1 (sandwiches, two APs) and N3, overdrafts,
    other flags, quarantine, sequence gaps, and APs in and out of contact.

    Times are a few hours before now, so every sale is recent; tests derive days from the
    sales themselves (``business_date``), never from the clock.
    """
    now = timezone.now()
    t = {x.code: x for x in Terminal.objects.all()}
    p = {x.sku: x for x in Product.objects.all()}
    c = {x.code: x for x in Customer.objects.all()}
    s = ReportScenario(now=now, terminals=t, products=p, customers=c)

    # N1 has 4 sandwiches: 3 + 3 + 1 sold offline on two registers → -3 (value 3 × 6.500).
    s.sales["n1_first"] = sale_record(
        terminal=t["N1-CAJA-01"], occurred_at=now - timedelta(hours=3), lines=[(p["SKU-SANDWICH"], 3)]
    )
    s.sales["n1_below"] = sale_record(
        terminal=t["N1-CAJA-02"], occurred_at=now - timedelta(hours=2), lines=[(p["SKU-SANDWICH"], 3)]
    )
    s.sales["n1_lowest"] = sale_record(
        terminal=t["N1-CAJA-01"], occurred_at=now - timedelta(hours=1), lines=[(p["SKU-SANDWICH"], 1)]
    )
    (s.events["n1_sandwich"],) = negative_stock_events_detect(node=t["N1-CAJA-01"].node, product=p["SKU-SANDWICH"])
    # N3 has 5 «sándwich cubano»: 6 sold offline → -1 (value 9.500).
    s.sales["n3_below"] = sale_record(
        terminal=t["N3-CAJA-01"], occurred_at=now - timedelta(hours=2, minutes=30), lines=[(p["AND-SANDWICH"], 6)]
    )
    (s.events["n3_sandwich"],) = negative_stock_events_detect(node=t["N3-CAJA-01"].node, product=p["AND-SANDWICH"])

    # Overdrafts: Tomás (-4.500, cupo 5.000) buys 6.000 offline → -10.500, 5.500 beyond his limit.
    s.sales["overdraft"] = sale_record(
        terminal=t["N1-CAJA-01"],
        occurred_at=now - timedelta(minutes=50),
        customer=c["C-000200"],
        lines=[(p["SKU-JUGO"], 2)],
        known_balance=Decimal("-4500"),
        flags=[FlagCode.OVERDRAFT_EXCEEDED],
    )
    # An Andina employee with no overdraft sells offline on a stale balance → -2.000ish.
    employee = c["E-000001"]
    employee.refresh_from_db()
    cups = math.ceil((employee.balance + Decimal("2000")) / p["AND-CAFE"].price)
    s.sales["unverified"] = sale_record(
        terminal=t["N3-CAJA-02"],
        occurred_at=now - timedelta(minutes=40),
        customer=employee,
        lines=[(p["AND-CAFE"], cups)],
        flags=[FlagCode.BALANCE_UNVERIFIED],
    )
    # Ana Pérez buys a blocked product offline at N1; a deferred, not-allowed one at N2.
    s.sales["blocked"] = sale_record(
        terminal=t["N1-CAJA-02"],
        occurred_at=now - timedelta(minutes=30),
        customer=c["C-000123"],
        lines=[(p["SKU-GASEOSA"], 1)],
        flags=[FlagCode.BLOCKED_PRODUCT],
    )
    s.sales["n2_offline"] = sale_record(
        terminal=t["N2-CAJA-01"],
        occurred_at=now - timedelta(minutes=20),
        lines=[(p["SKU-AGUA"], 1)],
        flags=[FlagCode.OFFLINE_NOT_ALLOWED, FlagCode.INVOICE_DEFERRED],
    )
    s.sales["online"] = sale_record(
        terminal=t["N1-CAJA-01"], occurred_at=now - timedelta(minutes=10), lines=[(p["SKU-FRUTA"], 1)], offline=False
    )
    for code in ("C-000200", "E-000001", "C-000123"):
        c[code].refresh_from_db()

    s.quarantined["unknown_product"] = quarantined_sale_record(
        terminal=t["N1-CAJA-01"],
        errors=[
            {"code": "unknown_product", "field": "lines[0].sku", "message": "Producto «SKU-NO-EXISTE» desconocido"}
        ],
        payload={
            "id": str(uuid.uuid4()),
            "seq": 8,
            "occurred_at": (now - timedelta(hours=4)).isoformat(),
            "offline": True,
            "customer": "C-<b>ñandú</b>",
            "lines": [{"sku": "SKU-NO-EXISTE", "quantity": "1", "unit_price": "1000.00"}],
            "payments": [{"method": "cash", "amount": "1000.00"}],
        },
    )
    s.quarantined["totals"] = quarantined_sale_record(
        terminal=t["N3-CAJA-01"],
        errors=[{"code": "totals_mismatch", "field": "payments", "message": "Los pagos no suman el total"}],
    )
    s.quarantined["discarded"] = quarantined_sale_record(
        terminal=t["N3-CAJA-01"],
        errors=[{"code": "conflict", "field": "id", "message": "Mismo id con otro contenido"}],
        status=QuarantineStatus.DISCARDED,
    )

    sequence_gap_record(terminal=t["N1-CAJA-01"], first_missing=5, last_missing=7)
    sequence_gap_record(terminal=t["N1-CAJA-01"], first_missing=10, last_missing=10)
    # Heartbeats last: uploads above bumped last_seen_at.
    terminal_heartbeat_record(
        terminal=t["N1-CAJA-01"],
        seen_at=now - timedelta(minutes=2),
        pending_sales=3,
        last_seq=12,
        balances_age_seconds=280,
    )
    terminal_heartbeat_record(
        terminal=t["N1-CAJA-02"],
        seen_at=now - timedelta(hours=2),
        pending_sales=9,
        last_seq=4,
        balances_age_seconds=7300,
    )
    terminal_heartbeat_record(terminal=t["N3-CAJA-01"], seen_at=now - timedelta(minutes=1), pending_sales=0)
    for terminal in t.values():
        terminal.refresh_from_db()
    for event in s.events.values():
        event.refresh_from_db()
    assert NodeStock.objects.get(node=t["N1-CAJA-01"].node, product=p["SKU-SANDWICH"]).quantity == -3
    return s
