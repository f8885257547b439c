"""Data builder for the report tests: every row comes from the real paths.

Sales are sale objects as terminals send them (``docs/pos-sync-api.md`` §4), posted with
the real ingest (``sales.ingest.sale_batch_ingest`` for offline batches,
``sale_online_record`` for online sales) and then reconciled by the real reconcile
service (``sales.reconcile.sales_reconcile``); the builder checks that every sale it
stored ends up with ``reconciled_at``. So stock and balance ledgers, negative-stock
events, flags, comandas and sequence gaps are what reconciliation computed, quarantine
rows are what the ingest kept of rejected sales, and the terminals' sync state is what
uploads and the real heartbeat service left on them.

Reconciliation is called directly rather than left to the on-commit Celery task: the
report tests run inside a transaction that never commits (on-commit callbacks do not
fire there). In transactional tests (the browser ones) the eager task has already run
and the direct call finds nothing left to do.

The only thing faked is the clock of a heartbeat: the heartbeat service stamps
``last_seen_at`` with the server's "now", and the scenario needs APs heard from minutes
or hours ago (to be silent or not), so it runs the real service with "now" set to then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from billing.models import Customer
from inventory.models import NegativeStockEvent, NodeStock, Product
from nodes.models import Terminal
from nodes.roles import FINANCE_GROUP
from nodes.services import terminal_heartbeat_record as heartbeat_service
from sales.ingest import BatchResult, sale_batch_ingest, sale_online_record
from sales.models import QuarantinedSale, QuarantineStatus, Sale
from sales.quarantine import quarantined_sale_discard
from sales.reconcile import sales_reconcile

Line = tuple[Product, Decimal | int] | tuple[Product, Decimal | int, Decimal]


def _money(value: Decimal | int) -> str:
    return f"{Decimal(value):.2f}"


def sale_payload(
    *,
    seq: int,
    occurred_at: datetime,
    lines: list[Line] | list[dict[str, str]],
    customer: Customer | str | None = None,
    payments: list[tuple[str, Decimal | int]] | None = None,
    offline: bool = True,
    known_balance: Decimal | None = None,
    sale_id: str | None = None,
) -> dict[str, Any]:
    """A sale object as a terminal sends it. ``lines`` are ``(product, quantity[, price])``
    (catalog price by default) or raw line objects; ``payments`` default to the total in
    payGO with a customer, in cash without one."""
    if lines and isinstance(lines[0], dict):
        raw_lines = list(lines)
    else:
        raw_lines = [
            {
                "sku": product.sku,
                "quantity": str(quantity),
                "unit_price": _money(rest[0] if rest else product.price),
            }
            for product, quantity, *rest in lines
        ]
    total = sum((Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in raw_lines), Decimal("0"))
    if payments is None:
        payments = [("paygo" if customer else "cash", total)]
    return {
        "id": sale_id or str(uuid.uuid4()),
        "seq": seq,
        "occurred_at": occurred_at.isoformat(),
        "offline": offline,
        "customer": customer.code if isinstance(customer, Customer) else customer,
        "lines": raw_lines,
        "payments": [{"method": method, "amount": _money(amount)} for method, amount in payments],
        "known_balance": _money(known_balance) if known_balance is not None else None,
    }


def sales_reconciled(sale_ids: list[str]) -> None:
    """Run the real reconciliation on these sales and check it really ran."""
    if not sale_ids:
        return
    sales_reconcile(sale_ids=sale_ids)
    left = list(Sale.objects.filter(pk__in=sale_ids, reconciled_at__isnull=True).values_list("pk", flat=True))
    assert not left, f"sales not reconciled: {left}"


def sales_upload(
    *, terminal: Terminal, sales: list[dict[str, Any]], received_at: datetime | None = None
) -> BatchResult:
    """Post an offline batch through the real ingest, then reconcile what it accepted."""
    result = sale_batch_ingest(
        terminal=terminal, batch_id=str(uuid.uuid4()), sales=sales, received_at=received_at or timezone.now()
    )
    sales_reconciled([r["id"] for r in result.results if r["status"] == "accepted"])
    return result


def _next_seq(terminal: Terminal) -> int:
    return (Sale.objects.filter(terminal=terminal).aggregate(m=Max("seq"))["m"] or 0) + 1


def sale_record(
    *,
    terminal: Terminal,
    occurred_at: datetime,
    lines: list[Line],
    customer: Customer | None = None,
    payments: list[tuple[str, Decimal]] | None = None,
    offline: bool = True,
    seq: int | None = None,
    received_at: datetime | None = None,
    known_balance: Decimal | None = None,
) -> Sale:
    """One sale through the real ingest (a batch of one, or the online endpoint's
    service), reconciled. Fails if the ingest does not accept it."""
    payload = sale_payload(
        seq=_next_seq(terminal) if seq is None else seq,
        occurred_at=occurred_at,
        lines=lines,
        customer=customer,
        payments=payments,
        offline=offline,
        known_balance=known_balance,
    )
    if offline:
        (outcome,) = sales_upload(terminal=terminal, sales=[payload], received_at=received_at).results
        assert outcome["status"] == "accepted", outcome
    else:
        # Online sales happen now: received within the clock tolerance of their time.
        sale_online_record(terminal=terminal, sale=payload, received_at=received_at or occurred_at)
        sales_reconciled([payload["id"]])
    return Sale.objects.get(pk=payload["id"])


def terminal_heartbeat_record(
    *,
    terminal: Terminal,
    seen_at: datetime | None,
    pending_sales: int | None = None,
    last_seq: int | None = None,
    balances_age_seconds: int | None = None,
) -> None:
    """The real heartbeat service, as it ran at ``seen_at`` (None: now)."""

    def send() -> None:
        heartbeat_service(
            terminal=terminal,
            pending_sales=pending_sales,
            last_seq=last_seq,
            balances_cursor_age_seconds=balances_age_seconds,
        )

    if seen_at is None:
        send()
    else:
        with mock.patch("django.utils.timezone.now", return_value=seen_at):
            send()


def _quarantined(terminal: Terminal, result: BatchResult, index: int) -> QuarantinedSale:
    outcome = result.results[index]
    assert outcome["status"] == "rejected", outcome
    return QuarantinedSale.objects.get(terminal=terminal, sale_id=outcome["id"], status=QuarantineStatus.PENDING)


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
    """On top of the demo, uploaded by the demo's APs and reconciled:

    - N1 (both offline flags on, 4 sandwiches): Caja 2 uploads at −2 h a blocked product
      sold to Ana and 3 sandwiches; Caja 1 uploads at −15 min (arrival after Caja 2, sales
      from before and after it): 3 sandwiches at −3 h (stock 4 → 1), three cash sales,
      1 sandwich at −1 h (→ −3), Tomás's juices beyond his overdraft, and a sale with an
      unknown product and customer (quarantined, seq 10). Its seq 5–7 are still on the
      register. Then an online sale (seq 11) and a heartbeat at −2 min; Caja 2's last
      heartbeat was at −2 h.
    - N2 (offline flags off): Samuel pays with payGO offline (balance not verified, below
      zero within his overdraft) and a bottle of water is sold offline (closed inventory).
    - N3 (flags on, 5 «sándwich cubano»): Caja 1 sells 6 (→ −1) and a sale whose payments
      do not add up (quarantined); later it resends the first sale's id with other content
      (quarantined as a conflict, discarded by finance). Caja 2: an employee goes below
      zero within her overdraft (no flag: the node uses the last balance).

    Times are before now, so every sale is recent; tests derive days from the sales
    themselves (``business_date``), never from the clock.
    """
    now = timezone.now()
    t = {x.code: x for x in Terminal.objects.all()}
    p = {x.sku: x for x in Product.objects.all()}
    c = {x.code: x for x in Customer.objects.all()}
    s = ReportScenario(now=now, terminals=t, products=p, customers=c)

    def ago(**delta: int) -> datetime:
        return now - timedelta(**delta)

    # --- N1 Caja 2: uploads at −2 h, then silent.
    blocked = sale_payload(
        seq=1,
        occurred_at=ago(hours=2, minutes=20),
        customer=c["C-000123"],
        lines=[(p["SKU-GASEOSA"], 1)],
        known_balance=Decimal("12000"),
    )
    n1_below = sale_payload(seq=2, occurred_at=ago(hours=2, minutes=10), lines=[(p["SKU-SANDWICH"], 3)])
    sales_upload(terminal=t["N1-CAJA-02"], sales=[blocked, n1_below], received_at=ago(hours=2))
    terminal_heartbeat_record(
        terminal=t["N1-CAJA-02"], seen_at=ago(hours=2), pending_sales=9, last_seq=11, balances_age_seconds=7300
    )

    # --- N1 Caja 1: back online at −15 min, uploads its offline sales.
    n1_first = sale_payload(seq=1, occurred_at=ago(hours=3), lines=[(p["SKU-SANDWICH"], 3)])
    cash = [
        sale_payload(seq=seq, occurred_at=ago(hours=2, minutes=50 - 10 * (seq - 2)), lines=[(p["SKU-FRUTA"], 1)])
        for seq in (2, 3, 4)
    ]
    n1_lowest = sale_payload(seq=8, occurred_at=ago(hours=1), lines=[(p["SKU-SANDWICH"], 1)])
    overdraft = sale_payload(
        seq=9,
        occurred_at=ago(minutes=50),
        customer=c["C-000200"],
        lines=[(p["SKU-JUGO"], 2)],
        known_balance=Decimal("-4500"),
    )
    unknown = sale_payload(
        seq=10,
        occurred_at=ago(minutes=40),
        customer="C-<b>ñandú</b>",
        lines=[{"sku": "SKU-NO-EXISTE", "quantity": "1", "unit_price": "1000.00"}],
        payments=[("cash", Decimal("1000"))],
    )
    caja1 = sales_upload(
        terminal=t["N1-CAJA-01"], sales=[n1_first, *cash, n1_lowest, overdraft, unknown], received_at=ago(minutes=15)
    )
    s.quarantined["unknown_product"] = _quarantined(t["N1-CAJA-01"], caja1, 6)
    online = sale_payload(seq=11, occurred_at=ago(minutes=10), lines=[(p["SKU-FRUTA"], 1)], offline=False)
    sale_online_record(terminal=t["N1-CAJA-01"], sale=online, received_at=ago(minutes=10) + timedelta(seconds=5))
    sales_reconciled([online["id"]])
    terminal_heartbeat_record(
        terminal=t["N1-CAJA-01"], seen_at=ago(minutes=2), pending_sales=3, last_seq=11, balances_age_seconds=280
    )

    # --- N2 (offline flags off): uploads now.
    unverified = sale_payload(
        seq=1,
        occurred_at=ago(minutes=35),
        customer=c["C-000005"],
        lines=[(p["SKU-JUGO"], 3)],
        known_balance=Decimal("5000"),
    )
    n2_offline = sale_payload(seq=2, occurred_at=ago(minutes=20), lines=[(p["SKU-AGUA"], 1)])
    sales_upload(terminal=t["N2-CAJA-01"], sales=[unverified, n2_offline])

    # --- N3 Caja 1: a batch at −20 min, a bad resend at −5 min, a heartbeat at −1 min.
    n3_below = sale_payload(seq=1, occurred_at=ago(hours=2, minutes=30), lines=[(p["AND-SANDWICH"], 6)])
    totals = sale_payload(seq=2, occurred_at=ago(hours=2), lines=[(p["AND-PAN"], 2)], payments=[("cash", 2000)])
    n3 = sales_upload(terminal=t["N3-CAJA-01"], sales=[n3_below, totals], received_at=ago(minutes=20))
    s.quarantined["totals"] = _quarantined(t["N3-CAJA-01"], n3, 1)
    resent = {**n3_below, "lines": [{**n3_below["lines"][0], "quantity": "5"}]}
    conflict = sales_upload(terminal=t["N3-CAJA-01"], sales=[resent], received_at=ago(minutes=5))
    finance = get_user_model().objects.filter(groups__name=FINANCE_GROUP).order_by("pk").first()
    s.quarantined["discarded"] = quarantined_sale_discard(
        quarantined=_quarantined(t["N3-CAJA-01"], conflict, 0),
        user=finance,
        note="Reenvío con otro contenido; la venta original ya está registrada",
    )
    terminal_heartbeat_record(terminal=t["N3-CAJA-01"], seen_at=ago(minutes=1), pending_sales=0)

    # --- N3 Caja 2: an employee below zero within her overdraft (uploads now).
    employee = c["E-000001"]
    cups = 10  # 15.000 − 10 × 1.800 = −3.000, within her 5.000 overdraft
    within = sale_payload(
        seq=1,
        occurred_at=ago(minutes=40),
        customer=employee,
        lines=[(p["AND-CAFE"], cups)],
        known_balance=employee.balance,
    )
    sales_upload(terminal=t["N3-CAJA-02"], sales=[within])

    keys = {
        "blocked": blocked,
        "n1_below": n1_below,
        "n1_first": n1_first,
        "n1_cash_2": cash[0],
        "n1_cash_3": cash[1],
        "n1_cash_4": cash[2],
        "n1_lowest": n1_lowest,
        "overdraft": overdraft,
        "online": online,
        "unverified": unverified,
        "n2_offline": n2_offline,
        "n3_below": n3_below,
        "within_limit": within,
    }
    stored = Sale.objects.in_bulk([payload["id"] for payload in keys.values()], field_name="id")
    s.sales = {key: stored[uuid.UUID(payload["id"])] for key, payload in keys.items()}
    assert Sale.objects.count() == len(s.sales)
    assert not Sale.objects.filter(reconciled_at__isnull=True).exists()

    s.events["n1_sandwich"] = NegativeStockEvent.objects.get(node=t["N1-CAJA-01"].node, product=p["SKU-SANDWICH"])
    s.events["n3_sandwich"] = NegativeStockEvent.objects.get(node=t["N3-CAJA-01"].node, product=p["AND-SANDWICH"])
    for obj in (*t.values(), *c.values(), *s.quarantined.values()):
        obj.refresh_from_db()
    assert NodeStock.objects.get(node=t["N1-CAJA-01"].node, product=p["SKU-SANDWICH"]).quantity == -3
    return s
