"""Balance and unit effects of reconciled sales, and the customer rules that depend on
time order: overdraft (balance before each sale) and the daily maximum (what the
customer had spent that Bogotá day before each sale).

Order of sales: ``(occurred_at, terminal, seq)`` — time of sale, never arrival
(DESIGN principle 5); ledger movements that are not sales go first at the same instant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from uuid import UUID

from django.db import connection
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum

from billing.ledger import sale_balance_movements_post, sale_unit_movements_post
from billing.models import BalanceMovement, Customer
from paygo.bulk_insert import array_param
from sales.models import FlagCode, Sale, SaleLine
from sales.reconcile_flags import FlagEvaluation, time_ordered_flags
from sales.rules import CustomerFacts, LineFacts, PaymentFacts

ZERO = Decimal("0")
ONE = Decimal("1")


@dataclass(frozen=True)
class SalePaymentEffect:
    """What reconciliation needs of one paygo or units payment."""

    payment_id: int
    sale_id: UUID
    customer_id: int
    amount: Decimal
    occurred_at: datetime
    unit_type: str = ""


def sale_balance_movements_append(
    *,
    payments: list[SalePaymentEffect],
    institution_of: Mapping[int, int] | None = None,
    also_changed: Collection[int] = (),
) -> int:
    """Append one ``sale`` balance movement (−amount) per paygo payment that has none.

    Online sales already got theirs at ingest; those, and a retried reconcile's own, are
    skipped by the unique ``BalanceMovement.payment``
    (:func:`~billing.ledger.sale_balance_movements_post`). Balances change set-based and
    the balance feed is bumped (terminals see the change). Locks: the institution's
    balance feed row until commit (the customers' too, unless ``institution_of`` says the
    caller holds them). ``also_changed``: customers whose units changed, bumped in the
    feed with the balances (:func:`sale_unit_movements_append`). Returns the number of
    movements appended.
    """
    payments = [p for p in payments if p.amount != 0]
    return sale_balance_movements_post(
        payment_ids=[p.payment_id for p in payments],
        customer_ids=[p.customer_id for p in payments],
        amounts=[p.amount for p in payments],
        occurred_at=[p.occurred_at for p in payments],
        institution_of=institution_of,
        also_changed=also_changed,
    )


def sale_unit_movements_append(
    *,
    payments: list[SalePaymentEffect],
    institution_of: Mapping[int, int] | None = None,
    changed: set[int] | None = None,
) -> int:
    """Append one ``sale`` unit movement (−amount units) per units payment that has none.

    Same guarantees as :func:`sale_balance_movements_append` (``UnitMovement.payment`` is
    unique). With ``changed``, the customers whose units changed are added to it and left
    for the caller to bump in the feed (``also_changed`` of the balances' append).
    Returns the number of movements appended.
    """
    payments = [p for p in payments if int(p.amount) != 0]
    return sale_unit_movements_post(
        payment_ids=[p.payment_id for p in payments],
        customer_ids=[p.customer_id for p in payments],
        unit_types=[p.unit_type for p in payments],
        quantities=[int(p.amount) for p in payments],
        occurred_at=[p.occurred_at for p in payments],
        institution_of=institution_of,
        changed=changed,
    )


def _balance_order(row: tuple) -> tuple:
    _customer, _amount, occurred_at, pk, sale_id, terminal_id, seq, position = row[:8]
    if sale_id is None:
        return (occurred_at, 0, 0, 0, 0, pk)
    return (occurred_at, 1, terminal_id, seq, position, pk)


def overdraft_recompute(
    *,
    customers_since: dict[int, datetime],
    reconciling: Collection[UUID] | None = None,
    limits: Mapping[int, Decimal] | None = None,
) -> FlagEvaluation:
    """Recompute ``overdraft_exceeded`` for the customers' sales from a time on.

    Walks each customer's balance ledger in time order (opening = balance minus the
    movements from ``since`` on) and asks :mod:`sales.rules` for every sale with its
    balance just before it. With ``reconciling`` (the sales being reconciled), a later
    sale still waiting for a reconciliation of its own (an online sale: its movement is
    written at ingest) is walked, its movement counts, but it is not judged: its own
    chunk judges it, from its time on, with everything stored by then. Reconciling a
    backlog chunk by chunk in time order, each chunk would otherwise judge the rest of the
    backlog's sales of its customers, again in every chunk. Set-based: two queries for any
    number of customers. Pure read; the caller writes the flags. Locks: none of its own;
    the caller holds the customer locks (:func:`sales.reconcile_locks.customers_lock`),
    so a sale another worker reconciles is either committed before this reads it or
    waits for this chunk to end; ``limits`` (``{customer: overdraft limit}``) as the
    caller read them with those locks, else read here. Idempotent.
    """
    evaluation = FlagEvaluation(code=FlagCode.OVERDRAFT_EXCEEDED)
    if not customers_since:
        return evaluation
    window_start = min(customers_since.values())
    if limits is None:
        limits = dict(
            Customer.objects.filter(pk__any=list(customers_since)).order_by().values_list("pk", "overdraft_limit")
        )
    # Opening balance = the materialized balance minus the movements walked, the balance
    # read in the same statement (one snapshot): its cost does not grow with the
    # customer's history, as a sum of every earlier movement would.
    balance_now = Customer.objects.filter(pk=OuterRef("customer_id")).order_by().values("balance")[:1]
    rows = (
        BalanceMovement.objects.filter(customer_id__any=list(customers_since), occurred_at__gte=window_start)
        .order_by()  # walked in _balance_order below
        .annotate(balance_now=Subquery(balance_now))
        .values_list(
            "customer_id",
            "amount",
            "occurred_at",
            "pk",
            "payment__sale_id",
            "payment__sale__terminal_id",
            "payment__sale__seq",
            "payment__position",
            "balance_now",
            "payment__sale__reconciled_at",
        )
    )
    by_customer: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_customer[row[0]].append(row)
    opening = {
        customer_id: customer_rows[0][8] - sum((r[1] for r in customer_rows), ZERO)
        for customer_id, customer_rows in by_customer.items()
    }

    for customer_id, since in customers_since.items():
        running = opening.get(customer_id, ZERO)
        ordered = sorted(by_customer[customer_id], key=_balance_order)
        for (sale_id, _key), group in groupby(ordered, key=lambda r: (r[4], r[4] or r[3])):
            group = list(group)
            delta = sum((r[1] for r in group), ZERO)
            if sale_id is None or group[0][2] < since or _judged_later(group[0][9], sale_id, reconciling):
                running += delta
                continue
            flags = time_ordered_flags(
                payments=[PaymentFacts(index=r[7], method="paygo", amount=-r[1]) for r in group],
                customer=CustomerFacts(overdraft_limit=limits[customer_id], balance_before=running),
            )
            running += delta
            evaluation.evaluated.add(sale_id)
            if FlagCode.OVERDRAFT_EXCEEDED in flags:
                evaluation.flagged[sale_id] = flags[FlagCode.OVERDRAFT_EXCEEDED]
    return evaluation


# A sale's place in time order: (occurred_at, terminal, seq).
SaleKey = tuple[datetime, int, int]


def daily_max_recompute(
    *,
    customer_days: Mapping[tuple[int, date], SaleKey],
    amounts: Mapping[UUID, Decimal] | None = None,
    reconciling: Collection[UUID] | None = None,
    maximums: Mapping[int, Decimal | None] | None = None,
) -> FlagEvaluation:
    """Recompute ``daily_max_exceeded`` for the given customers' days, from a sale on.

    ``customer_days`` maps each (customer, Bogotá business date) to the time-order key of
    its earliest sale that changed (the chunk's). A sale's flag depends only on the sales
    before it that day, so the day is walked from that sale on, in time of sale, opening
    with the stored totals of the sales before it; :mod:`sales.rules` decides on every sale
    walked with what the customer had spent that day before it: the sale whose running
    total passes the maximum is flagged, and every later one that day too. The sales
    before the key keep their flags (nothing before them changed), so a chunk costs what
    it walks, not the length of the customer's day; a flag stays what the maximum in
    force when its sale was walked made it. ``amounts``: what the caller already summed
    of some sales' lines (Σ quantity × unit price, :func:`sale_amounts_add`); the lines
    of the other sales walked are summed here. ``reconciling``: as for
    :func:`overdraft_recompute`, a later sale still waiting for its own reconciliation
    counts in what the customer spent but is not judged; ``maximums`` (``{customer:
    daily maximum}``) as the caller read them with the customers' locks, else read here.
    Set-based: three queries at most for any number of days. Pure read; the caller writes
    the flags. Locks: none of its own (caller holds the customer locks). Idempotent.
    """
    evaluation = FlagEvaluation(code=FlagCode.DAILY_MAX_EXCEEDED)
    if not customer_days:
        return evaluation
    customer_ids = {c for c, _ in customer_days}
    if maximums is None:
        maximums = dict(Customer.objects.filter(pk__any=list(customer_ids)).order_by().values_list("pk", "daily_max"))
    daily_max = {customer_id: maximums[customer_id] for customer_id in customer_ids}
    # A customer without a maximum is never flagged: the sales of their days from the key
    # on are evaluated unflagged (which clears a flag left from when they had one), with
    # no walk. Their earlier sales are only read when the day has a maximum to walk.
    unlimited = {c for c in customer_ids if daily_max[c] is None}
    # Spent before a sale = the totals of the customer's earlier sales that day, as the
    # online check reads it (sales.ingest.sale_online_record sums Sale.total).
    spent: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    walked = []
    # Walked in time of sale below.
    for row in _day_sales({day: key[0] if day[0] in unlimited else None for day, key in customer_days.items()}):
        since = customer_days[(row[0], row[1])]
        if (row[2], row[3], row[4]) < since:
            spent[(row[0], row[1])] += row[6]
        elif row[0] not in unlimited:
            walked.append(row)
        elif not _judged_later(row[7], row[5], reconciling):
            evaluation.evaluated.add(row[5])
    known = amounts or {}
    judged = [row[5] for row in walked if row[5] not in known and not _judged_later(row[7], row[5], reconciling)]
    amounts = {**_sale_amounts(judged), **known}
    for customer_id, business_date, _occurred_at, _terminal, _seq, sale_id, total, reconciled_at in sorted(
        walked, key=lambda r: (r[2], r[3], r[4])
    ):
        before = spent[(customer_id, business_date)]
        if _judged_later(reconciled_at, sale_id, reconciling):
            spent[(customer_id, business_date)] = before + total
            continue
        amount = amounts.get(sale_id, ZERO)
        flags = time_ordered_flags(
            # The daily maximum reads only what the sale adds up to (SaleFacts.total), so
            # one line of that amount stands for the sale's lines.
            lines=[LineFacts(index=0, sku="", quantity=ONE, unit_price=amount, tracks_inventory=False)],
            customer=CustomerFacts(daily_max=daily_max[customer_id], spent_today_before=before),
        )
        spent[(customer_id, business_date)] = before + total
        evaluation.evaluated.add(sale_id)
        if FlagCode.DAILY_MAX_EXCEEDED in flags:
            evaluation.flagged[sale_id] = flags[FlagCode.DAILY_MAX_EXCEEDED]
    return evaluation


_DAY_SALE_COLUMNS = (
    "customer_id",
    "business_date",
    "occurred_at",
    "terminal_id",
    "seq",
    "pk",
    "total",
    "reconciled_at",
)


def _day_sales(days: Mapping[tuple[int, date], datetime | None]) -> list[tuple]:
    """The sales of each (customer, Bogotá business date) of ``days`` from the given time
    on (``None``: the whole day), as ``_DAY_SALE_COLUMNS``, unordered. Read only.

    On PostgreSQL each day is one probe of ``sale_customer_day``, a nested loop over the
    days kept so by ``OFFSET 0`` (the subquery is not merged into a join the planner may
    reorder). Right after a large upload the statistics do not know its sales yet, and
    one query over all the customers and dates was planned to read every sale of the date
    through the index's second column, filtering on the customers: 31–50 ms a chunk at
    the end of a 20,000-sale backlog, against 5–9 ms for these probes. Elsewhere one query
    by customers and dates, narrowed to the days here."""
    if not days:
        return []
    if connection.vendor != "postgresql":
        rows = (
            Sale.objects.filter(
                customer_id__any=list({customer for customer, _ in days}),
                business_date__in={business_date for _, business_date in days},
            )
            .order_by()
            .values_list(*_DAY_SALE_COLUMNS)
        )
        return [
            row
            for row in rows
            if (row[0], row[1]) in days and (days[(row[0], row[1])] is None or row[2] >= days[(row[0], row[1])])
        ]
    table = connection.ops.quote_name(Sale._meta.db_table)
    columns = ", ".join(f"s.{'id' if column == 'pk' else column}" for column in _DAY_SALE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM unnest(%s::bigint[], %s::date[], %s::timestamptz[]) AS d(customer_id, day, since)"
            f" CROSS JOIN LATERAL (SELECT * FROM {table} s WHERE s.customer_id = d.customer_id"
            " AND s.business_date = d.day AND (d.since IS NULL OR s.occurred_at >= d.since) OFFSET 0) s",
            [
                array_param([customer for customer, _ in days]),
                array_param([business_date for _, business_date in days]),
                array_param(list(days.values())),
            ],
        )
        return cursor.fetchall()


def _judged_later(reconciled_at: datetime | None, sale_id: UUID, reconciling: Collection[UUID] | None) -> bool:
    """A sale waiting for a reconciliation of its own (not the one running): its flags are
    decided then, with every sale stored before it by that time."""
    return reconciling is not None and reconciled_at is None and sale_id not in reconciling


def sale_amounts_add(amounts: dict[UUID, Decimal], sale_id: UUID, quantity: Decimal, unit_price: Decimal) -> None:
    """Add one line to its sale's amount (Σ quantity × unit price, exact in Decimal as in
    PostgreSQL's ``numeric``: :func:`_sale_amounts` reads the same sum there)."""
    amounts[sale_id] = amounts.get(sale_id, ZERO) + quantity * unit_price


def _sale_amounts(sale_ids: list[UUID]) -> dict[UUID, Decimal]:
    """Σ quantity × unit_price of each sale's lines, exact: what ``SaleFacts.total`` adds.

    On PostgreSQL summed by the database (``numeric`` arithmetic is exact, as Decimal's
    is), one row per sale instead of one per line. SQLite keeps decimals as floating
    point, so there the lines are read and summed as Decimals."""
    if not sale_ids:
        return {}
    lines = SaleLine.objects.filter(sale_id__any=sale_ids).order_by()
    if connection.vendor == "postgresql":
        return dict(
            lines.values("sale_id")
            .annotate(amount=Sum(F("quantity") * F("unit_price"), output_field=DecimalField()))
            .values_list("sale_id", "amount")
        )
    amounts: dict[UUID, Decimal] = {}
    for sale_id, quantity, unit_price in lines.values_list("sale_id", "quantity", "unit_price"):
        sale_amounts_add(amounts, sale_id, quantity, unit_price)
    return amounts
