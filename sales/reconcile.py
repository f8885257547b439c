"""Reconciliation of stored sales: their stock, balance and unit effects, the flags that
need time order, comandas and sequence gaps — in one transaction with ``reconciled_at``.

Input: sales as ingest stores them (``reconciled_at`` NULL). Online sales already have
their ledger movements, comanda and invoice number; offline ones get them here. Every
recomputation runs in ``(occurred_at, terminal, seq)`` order over what is stored, so the
result does not depend on the order in which batches arrived (DESIGN principle 5).

The one exception is deferred invoice numbers (offline sales at node or institution
level, :func:`billing.invoicing.invoices_deferred_assign`). A number, once given, is
final (it may already be printed on the customer's invoice), so it cannot be recomputed
when an older sale arrives later: numbers follow time of sale *within what one
reconcile chunk numbers*, and across chunks they follow the order in which the chunks
were reconciled. What does converge whatever the arrival order: every such sale ends
with exactly one number, no number is used twice, and all stay inside their resolution's
range (``tests/sales/test_deferred_invoicing.py`` checks this as a property).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.db import transaction
from django.db.models import DateTimeField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.invoicing import invoice_deferred, invoices_reconciled_assign
from billing.reconcile import (
    SalePaymentEffect,
    daily_max_recompute,
    overdraft_recompute,
    sale_amounts_add,
    sale_balance_movements_append,
    sale_unit_movements_append,
)
from inventory.reconcile import SaleLineEffect, negative_stock_recompute, sale_stock_movements_append
from sales.kitchen import ComandaSale, comandas_create
from sales.models import Payment, PaymentMethod, Sale, SaleLine
from sales.reconcile_flags import sale_flags_apply
from sales.reconcile_locks import customers_lock, nodes_lock, unreconciled_sales_lock
from sales.sequence_gaps import sequence_gaps_recompute

logger = logging.getLogger(__name__)

# Sales per chunk (one transaction). A chunk has a fixed cost whatever its size (about 45
# statements built and planned, its locks, the recomputation windows): 1,000 sales cost
# about 15 % less per sale than two chunks of 500 (bench/README.md). The price: a chunk
# holds its customers' locks until it commits, and an online sale of one of them waits
# for that (in-process on the benchmark's machine: a median of about 130 ms for 1,000
# sales, 80-95 ms for 500 before the statement keys made chunks shorter).
RECONCILE_CHUNK_SIZE = 1000


def sales_reconcile(
    *,
    sale_ids: Iterable[UUID | str] | None = None,
    chunk_size: int = RECONCILE_CHUNK_SIZE,
    max_chunks: int = 100,
    fill: bool = False,
) -> int:
    """Reconcile the given sales (or every unreconciled sale), chunk by chunk.

    Each chunk is one transaction: lock up to ``chunk_size`` unreconciled sales
    (``FOR NO KEY UPDATE SKIP LOCKED``, pk order — sales another worker holds are left to it),
    then :func:`sales_chunk_reconcile`. Idempotent and crash-safe: a sale already
    reconciled is skipped, and a chunk interrupted anywhere rolls back whole, leaving
    its sales unreconciled for the retry or the sweep. Returns how many sales this call
    reconciled. At most ``max_chunks`` chunks per call (the sweep continues the rest).

    ``fill`` (the Celery task): a chunk of given ids smaller than ``chunk_size`` is topped
    up with other unreconciled sales, oldest by time of sale first, so terminals uploading
    a few sales every few seconds cost one chunk per ``chunk_size`` sales instead of one
    per upload (most of a chunk's cost does not grow with its size); the tasks of the
    sales taken along then find them reconciled and end after one query.
    """
    pending: set[UUID] | None = None
    if sale_ids is not None:
        pending = {value if isinstance(value, UUID) else UUID(str(value)) for value in sale_ids}
    done = 0
    for _ in range(max_chunks):
        if pending is not None and not pending:
            break
        with transaction.atomic():
            locked = unreconciled_sales_lock(sale_ids=pending, limit=chunk_size)
            if fill and pending is not None and len(locked) < chunk_size:
                locked = sorted(
                    locked + unreconciled_sales_lock(sale_ids=None, limit=chunk_size - len(locked), exclude=locked)
                )
            if not locked:
                break
            sales_chunk_reconcile(sale_ids=locked)
        done += len(locked)
        if pending is not None:
            pending.difference_update(locked)
    return done


def sales_chunk_reconcile(*, sale_ids: list[UUID]) -> None:
    """Apply every effect of a batch of locked, unreconciled sales and mark them reconciled.

    Must run inside the transaction holding the sales' locks. Reads the chunk's lines and
    payments and writes its comandas first, then takes the node locks, the customer locks
    (pk order, :mod:`sales.reconcile_locks`), the node-stock rows, and last the invoice
    resolutions of the offline sales numbered here (``FOR UPDATE``, pk order, inside
    :func:`~billing.invoicing.invoices_reconciled_assign`; online sales take the same row
    last too, so there is no cycle). Side effects: sale stock movements and node stock,
    negative-stock events, sale balance and unit movements (balances, units, balance
    feed), the reconciliation flags, comandas, sequence gaps, deferred invoice numbers
    (with their ``invoice_deferred`` flag and the resolutions' ``next_number``),
    ``Sale.reconciled_at`` — all in the caller's transaction, so numbers commit or roll
    back with the rest (a crash returns them to the range). An offline sale the owner's
    range cannot number (exhausted, expired, none) is still reconciled and stays
    unnumbered, with a warning in the log. Idempotent: a numbered sale is never renumbered.
    Set-based: the number of queries does not grow with the number of sales in the batch.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sales_chunk_reconcile must run inside a transaction")
    sales = {
        row["pk"]: row
        for row in Sale.objects.filter(pk__any=list(sale_ids))
        .order_by()
        .values(
            "pk",
            "node_id",
            "terminal_id",
            "seq",
            "customer_id",
            "occurred_at",
            "received_at",
            "business_date",
            "institution_id",
            "offline",
            "invoice_number",
            "node__invoice_numbering_level",
        )
    }
    if not sales:
        return
    # First what reads only the chunk's own rows, under no lock but the sales' own: they
    # are held by this transaction, and their lines and payments never change. The node
    # locks serialize the rest per node, so whatever runs before them overlaps with the
    # locked part of another worker's chunk.
    lines = list(
        # By the line's own columns: the model's default order joins and sorts by the sale.
        SaleLine.objects.filter(sale_id__any=list(sales))
        .order_by("sale_id", "position")
        .values_list(
            "pk",
            "sale_id",
            "quantity",
            "unit_price",
            "product_id",
            "product__sku",
            "product__name",
            "product__tracks_inventory",
            "product__requires_preparation",
        )
    )
    tracked = [
        SaleLineEffect(
            line_id=pk,
            sale_id=sale_id,
            node_id=sales[sale_id]["node_id"],
            product_id=product_id,
            quantity=quantity,
            occurred_at=sales[sale_id]["occurred_at"],
        )
        for pk, sale_id, quantity, _price, product_id, _sku, _name, tracks, _prep in lines
        if tracks
    ]
    pairs_since: dict[tuple[int, int], datetime] = {}
    for line in tracked:
        pair = (line.node_id, line.product_id)
        pairs_since[pair] = min(pairs_since.get(pair, line.occurred_at), line.occurred_at)
    paygo: list[SalePaymentEffect] = []
    units: list[SalePaymentEffect] = []
    for pk, sale_id, method, amount, unit_type in (
        Payment.objects.filter(sale_id__any=list(sales), method__in=[PaymentMethod.PAYGO, PaymentMethod.UNITS])
        .order_by("sale_id", "position")
        .values_list("pk", "sale_id", "method", "amount", "unit_type")
    ):
        sale = sales[sale_id]
        if sale["customer_id"] is None:
            logger.warning("sale %s has a %s payment without a customer; skipped", sale_id, method)
            continue
        effect = SalePaymentEffect(
            payment_id=pk,
            sale_id=sale_id,
            customer_id=sale["customer_id"],
            amount=amount,
            occurred_at=sale["occurred_at"],
            unit_type=unit_type,
        )
        (paygo if method == PaymentMethod.PAYGO else units).append(effect)
    customers_since: dict[int, datetime] = {}
    for payment in paygo:
        customers_since[payment.customer_id] = min(
            customers_since.get(payment.customer_id, payment.occurred_at), payment.occurred_at
        )
    # Each customer's day from its earliest sale in the chunk (time order) on.
    customer_days: dict[tuple[int, date], tuple[datetime, int, int]] = {}
    for s in sales.values():
        if s["customer_id"] is not None:
            day = (s["customer_id"], s["business_date"])
            key = (s["occurred_at"], s["terminal_id"], s["seq"])
            if day not in customer_days or key < customer_days[day]:
                customer_days[day] = key
    # The chunk's own sales are summed from the lines read above; the recomputation sums
    # only the lines of the reconciled sales after them that day, which it judges again.
    amounts: dict[UUID, Decimal] = {}
    items: dict[UUID, list[tuple[str, str, object]]] = defaultdict(list)
    for _pk, sale_id, quantity, unit_price, _product, sku, name, _tracks, prep in lines:
        if sales[sale_id]["customer_id"] is not None:
            sale_amounts_add(amounts, sale_id, quantity, unit_price)
        if prep:
            items[sale_id].append((sku, name, quantity))
    # A comanda depends on its sale alone (one per sale, ON CONFLICT DO NOTHING): no lock.
    comandas_create(
        sales=[
            ComandaSale(
                sale_id=sale_id,
                node_id=sales[sale_id]["node_id"],
                occurred_at=sales[sale_id]["occurred_at"],
                received_at=sales[sale_id]["received_at"],
                offline=sales[sale_id]["offline"],
                items=sale_items,
            )
            for sale_id, sale_items in items.items()
        ]
    )
    terminal_seqs: dict[int, list[int]] = defaultdict(list)
    for s in sales.values():
        terminal_seqs[s["terminal_id"]].append(s["seq"])
    deferred = [
        (
            pk,
            s["occurred_at"],
            s["terminal_id"],
            s["seq"],
            s["business_date"],
            s["institution_id"],
            s["node_id"],
            s["node__invoice_numbering_level"],
        )
        for pk, s in sales.items()
        if invoice_deferred(
            offline=s["offline"],
            invoice_number=s["invoice_number"],
            numbering_level=s["node__invoice_numbering_level"],
        )
    ]

    nodes_lock(node_ids=[s["node_id"] for s in sales.values()])
    # The customers before the node-stock rows the stock movements increment: the order an
    # online sale takes them in (sales.locks), so the two never wait on each other in a cycle.
    customers = customers_lock(customer_ids=[s["customer_id"] for s in sales.values() if s["customer_id"] is not None])
    institution_of = {pk: customer.institution_id for pk, customer in customers.items()}
    sale_stock_movements_append(lines=tracked)
    negative_stock = negative_stock_recompute(pairs_since=pairs_since, reconciling=sales.keys())
    # Units first: the customers whose units change are bumped in the balance feed with
    # the balances, one sequence and one row version for both.
    units_changed: set[int] = set()
    sale_unit_movements_append(payments=units, institution_of=institution_of, changed=units_changed)
    sale_balance_movements_append(payments=paygo, institution_of=institution_of, also_changed=units_changed)
    overdraft = overdraft_recompute(
        customers_since=customers_since,
        reconciling=sales.keys(),
        limits={pk: customer.overdraft_limit for pk, customer in customers.items()},
    )
    daily_max = daily_max_recompute(
        customer_days=customer_days,
        amounts=amounts,
        reconciling=sales.keys(),
        maximums={pk: customer.daily_max for pk, customer in customers.items()},
    )
    sale_flags_apply(evaluations=[negative_stock, overdraft, daily_max])
    sequence_gaps_recompute(terminal_seqs=terminal_seqs)
    now = timezone.now()
    # Sales the owner's range cannot number yet stay unnumbered (logged as a warning).
    # Those numbered get reconciled_at with their number, in the same row write.
    numbered = invoices_reconciled_assign(sales=deferred, reconciled_at=now)
    rest = [pk for pk in sales if pk not in numbered]
    if rest:
        # By primary key alone, keeping a reconciled_at already set: with "reconciled_at
        # IS NULL" in the WHERE, the planner may read the whole backlog from the partial
        # index sale_unreconciled_time instead of probing these ids.
        Sale.objects.filter(pk__any=rest).update(
            reconciled_at=Coalesce("reconciled_at", Value(now, output_field=DateTimeField()))
        )


def unreconciled_sale_ids(*, older_than: datetime, limit: int) -> list[UUID]:
    """Ids of sales received before ``older_than`` and still unreconciled, oldest first
    (the partial index ``sale_unreconciled_time`` holds only unreconciled sales, so this
    reads those, however many sales are stored). Read only; no locks."""
    return list(
        Sale.objects.filter(reconciled_at__isnull=True, received_at__lt=older_than)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
