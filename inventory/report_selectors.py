"""Reads behind the «Inventario negativo» report and the dashboard's stock figures."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Abs, Cast

from inventory.models import QUANTITY, NegativeStockEvent, NegativeStockStatus, NodeStock
from nodes.models import Institution, Node, Terminal
from paygo.reporting import business_day_end, business_day_start
from sales.models import Sale

VALUE = DecimalField(max_digits=20, decimal_places=2)
# The chart covers at most this many days, so a wide date filter cannot make it heavy.
CHART_MAX_DAYS = 92


def negative_stock_events_list(
    *,
    institution: Institution | None = None,
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    q: str = "",
) -> QuerySet[NegativeStockEvent]:
    """Negative-stock events with what finance reads next to each.

    Annotations: ``current_quantity`` (the node's stock of the product now),
    ``value_at_price`` (|lowest quantity| × the product's current price, the value of the
    units sold that were not there). The sales behind each event are prefetched in time
    order with their terminal. Dates filter ``started_at`` by Bogotá day; ``terminal``
    keeps events with at least one sale made at that AP.
    """
    current = NodeStock.objects.filter(node=OuterRef("node"), product=OuterRef("product")).values("quantity")[:1]
    events = (
        NegativeStockEvent.objects.select_related(
            "node", "node__institution", "product", "resolved_by", "resolution_movement"
        )
        .annotate(
            current_quantity=Subquery(current, output_field=DecimalField(**QUANTITY)),
            value_at_price=Cast(Abs(F("lowest_quantity")) * F("product__price"), VALUE),
        )
        .prefetch_related(
            Prefetch("sales", queryset=Sale.objects.select_related("terminal").order_by("occurred_at", "seq"))
        )
    )
    if institution:
        events = events.filter(node__institution=institution)
    if node:
        events = events.filter(node=node)
    if terminal:
        through = NegativeStockEvent.sales.through.objects.filter(
            negativestockevent_id=OuterRef("pk"), sale__terminal=terminal
        )
        events = events.filter(Exists(through))
    if date_from:
        events = events.filter(started_at__gte=business_day_start(date_from))
    if date_to:
        events = events.filter(started_at__lt=business_day_end(date_to))
    if status:
        events = events.filter(status=status)
    if q:
        events = events.filter(
            Q(product__sku__icontains=q)
            | Q(product__name__icontains=q)
            | Q(node__code__icontains=q)
            | Q(node__name__icontains=q)
        )
    return events


def negative_stock_value_by_node_daily(
    *, events: QuerySet[NegativeStockEvent], first_day: date, last_day: date
) -> dict[str, list[tuple[date, Decimal]]]:
    """Value at price of the negative stock still outstanding at the end of each Bogotá day,
    per node: an event counts on a day if it started before the day ended and had neither
    ended (stock back to zero or more) nor been resolved by then.

    ``events`` are the report's filtered rows (annotated by :func:`negative_stock_events_list`);
    one query, the days are bounded by :data:`CHART_MAX_DAYS`.
    """
    first_day = max(first_day, last_day - timedelta(days=CHART_MAX_DAYS - 1))
    days = [first_day + timedelta(days=offset) for offset in range((last_day - first_day).days + 1)]
    window_end = business_day_end(last_day)
    rows = (
        events.order_by()
        .filter(started_at__lt=window_end)
        # Finished before the first day ended: counted on no day of the window.
        .exclude(resolved_at__lt=business_day_end(first_day))
        .exclude(ended_at__lt=business_day_end(first_day))
        .values_list("node__code", "started_at", "ended_at", "resolved_at", "value_at_price")
    )
    series: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal("0")] * len(days))
    for node_code, started_at, ended_at, resolved_at, value in rows:
        finished = min((t for t in (ended_at, resolved_at) if t is not None), default=None)
        values = series[node_code]
        for index, day in enumerate(days):
            end = business_day_end(day)
            if started_at < end and (finished is None or finished >= end):
                values[index] += value or Decimal("0")
    return {code: list(zip(days, series[code], strict=True)) for code in sorted(series)}


def negative_stock_open_summary() -> dict[str, Decimal | int]:
    """Open events and their value at price, for the dashboard (one aggregate query)."""
    return NegativeStockEvent.objects.filter(status=NegativeStockStatus.OPEN).aggregate(
        count=Count("pk"), value=Sum(Cast(Abs(F("lowest_quantity")) * F("product__price"), VALUE))
    )
