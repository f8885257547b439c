"""Stock effects of reconciled sales: sale movements in the stock ledger, and the
negative-stock episodes recomputed in time-of-sale order.

Order of movements: ``(occurred_at, non-sale before sale, terminal, seq, line position,
id)`` — the time order of the sales (DESIGN principle 5), made total and stable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from typing import Any
from uuid import UUID

from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Concat

from inventory.ledger import stock_movements_post
from inventory.models import NegativeStockEvent, NegativeStockStatus, StockMovement, StockMovementKind
from sales.models import FlagCode
from sales.reconcile_flags import FlagEvaluation, time_ordered_flags
from sales.rules import LineFacts

ZERO = Decimal("0")
Pair = tuple[int, int]  # (node_id, product_id)

STALE_RESOLVED_NOTE = (
    "\n[Conciliación] Una venta subida después cambió el orden en el tiempo: esta venta ya no "
    "inicia un periodo de inventario negativo. Se conserva porque ya estaba resuelto."
)


@dataclass(frozen=True)
class SaleLineEffect:
    """What reconciliation needs of one tracked sale line."""

    line_id: int
    sale_id: UUID
    node_id: int
    product_id: int
    quantity: Decimal
    occurred_at: datetime


def sale_stock_movements_append(*, lines: list[SaleLineEffect]) -> int:
    """Append one ``sale`` stock movement (−quantity) per tracked line that has none yet.

    Online sales already got theirs at ingest; a retried reconcile finds its own.
    Set-based: one SELECT of existing movements, then :func:`stock_movements_post`.
    Idempotent under the caller's lock on the sales (and ``StockMovement.sale_line`` is
    unique: a duplicate would raise and roll the reconcile back, never double-count).
    Returns the number of movements appended.
    """
    if not lines:
        return 0
    existing = set(
        StockMovement.objects.filter(sale_line_id__in=[line.line_id for line in lines]).values_list(
            "sale_line_id", flat=True
        )
    )
    movements = [
        StockMovement(
            node_id=line.node_id,
            product_id=line.product_id,
            kind=StockMovementKind.SALE,
            quantity=-line.quantity,
            occurred_at=line.occurred_at,
            sale_line_id=line.line_id,
        )
        for line in lines
        if line.line_id not in existing
    ]
    stock_movements_post(movements=movements)
    return len(movements)


@dataclass
class _Episode:
    node_id: int
    product_id: int
    starting_sale: UUID
    started_at: datetime
    quantity_before: Decimal
    quantity_after: Decimal
    lowest_quantity: Decimal
    ended_at: datetime | None = None
    sales: list[UUID] = field(default_factory=list)


def _movement_order(row: tuple) -> tuple:
    _node, _product, _quantity, occurred_at, pk, sale_id, terminal_id, seq, position, _sku = row
    if sale_id is None:
        return (occurred_at, 0, 0, 0, 0, pk)
    return (occurred_at, 1, terminal_id, seq, position, pk)


def negative_stock_recompute(*, pairs_since: dict[Pair, datetime]) -> FlagEvaluation:
    """Recompute the negative-stock episodes of ``(node, product)`` pairs from a time on.

    For each pair the running stock is walked in time order from ``since`` (moved back
    to the start of an episode still below zero at ``since``, so an episode is always
    recomputed whole). An episode starts at the first sale line made while the stock is
    below zero (normally the one taking it from ≥0 to <0) and ends when stock is ≥0
    again. Episodes are upserted by ``(node, product, starting_sale)`` with their sales;
    stored episodes of the window that no longer start there are deleted when still
    open, or kept with a note when finance already resolved them.

    Set-based: a fixed number of queries for any number of pairs (events crossing the
    start, one opening aggregate, one movement scan, the upserts). Idempotent: a rerun
    with the same ledger writes the same rows. Locks: none of its own; the caller holds
    the node locks (:func:`sales.reconcile_locks.nodes_lock`).

    Returns the ``negative_stock`` evaluation of every sale walked.
    """
    evaluation = FlagEvaluation(code=FlagCode.NEGATIVE_STOCK)
    if not pairs_since:
        return evaluation
    node_ids = {n for n, _ in pairs_since}
    product_ids = {p for _, p in pairs_since}
    earliest = min(pairs_since.values())

    # Start every pair at the beginning of an episode still below zero at its `since`.
    starts = dict(pairs_since)
    crossing = NegativeStockEvent.objects.filter(
        node_id__in=node_ids, product_id__in=product_ids, started_at__lt=max(pairs_since.values())
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gte=earliest))
    for node_id, product_id, started_at, ended_at in crossing.values_list(
        "node_id", "product_id", "started_at", "ended_at"
    ):
        since = pairs_since.get((node_id, product_id))
        if since is not None and started_at < since and (ended_at is None or ended_at >= since):
            starts[(node_id, product_id)] = min(starts[(node_id, product_id)], started_at)
    window_start = min(starts.values())

    opening: dict[Pair, Decimal] = defaultdict(Decimal)
    for row in (
        StockMovement.objects.filter(node_id__in=node_ids, product_id__in=product_ids, occurred_at__lt=window_start)
        .values("node_id", "product_id")
        .annotate(total=Sum("quantity"))
    ):
        opening[(row["node_id"], row["product_id"])] = row["total"]

    rows = [
        row
        for row in StockMovement.objects.filter(
            node_id__in=node_ids, product_id__in=product_ids, occurred_at__gte=window_start
        ).values_list(
            "node_id",
            "product_id",
            "quantity",
            "occurred_at",
            "pk",
            "sale_line__sale_id",
            "sale_line__sale__terminal_id",
            "sale_line__sale__seq",
            "sale_line__position",
            "product__sku",
        )
        if (row[0], row[1]) in starts
    ]
    by_pair: dict[Pair, list[tuple]] = defaultdict(list)
    for row in rows:
        by_pair[(row[0], row[1])].append(row)

    episodes: list[_Episode] = []
    for pair, start in starts.items():
        running = opening[pair]
        current: _Episode | None = None
        ordered = sorted(by_pair[pair], key=_movement_order)
        for (sale_id, _key), group in groupby(ordered, key=lambda r: (r[5], r[5] or r[4])):
            group = list(group)
            occurred_at = group[0][3]
            delta = sum((r[2] for r in group), ZERO)
            if occurred_at < start:
                running += delta  # before this pair's window: part of its opening
                continue
            if sale_id is None:
                running += delta
                if current is not None and running >= 0:
                    current.ended_at = occurred_at
                    current = None
                continue
            flags = time_ordered_flags(
                lines=[
                    LineFacts(
                        index=r[8],
                        sku=r[9],
                        quantity=-r[2],
                        unit_price=ZERO,
                        tracks_inventory=True,
                        stock_before=running,
                    )
                    for r in group
                ]
            )
            before, running = running, running + delta
            evaluation.evaluated.add(sale_id)
            detail = flags.get(FlagCode.NEGATIVE_STOCK)
            if detail is None:
                continue
            if current is None:
                current = _Episode(
                    node_id=pair[0],
                    product_id=pair[1],
                    starting_sale=sale_id,
                    started_at=occurred_at,
                    quantity_before=before,
                    quantity_after=running,
                    lowest_quantity=running,
                )
                episodes.append(current)
            current.lowest_quantity = min(current.lowest_quantity, running)
            current.sales.append(sale_id)
            evaluation.flagged.setdefault(sale_id, detail)

    stale_resolved = _episodes_store(episodes=episodes, starts=starts, window_start=window_start)

    # A sale is flagged while it belongs to any live episode, including episodes of pairs
    # (or times) outside this window, whose stored detail is kept as it is.
    through = NegativeStockEvent.sales.through
    members = set(
        through.objects.filter(sale_id__in=evaluation.evaluated)
        .exclude(negativestockevent_id__in=stale_resolved)
        .values_list("sale_id", flat=True)
    )
    for sale_id in members:
        evaluation.flagged.setdefault(sale_id, None)
    return evaluation


def _episodes_store(*, episodes: list[_Episode], starts: dict[Pair, datetime], window_start: datetime) -> set[int]:
    """Upsert the recomputed episodes and retire the window's stale ones.

    Returns the ids of stale episodes kept because they were already resolved.
    """
    fresh_keys = {(e.node_id, e.product_id, e.starting_sale) for e in episodes}
    node_ids = {n for n, _ in starts}
    product_ids = {p for _, p in starts}
    stale_open: list[int] = []
    stale_resolved: set[int] = set()
    for pk, node_id, product_id, starting_sale, started_at, status in NegativeStockEvent.objects.filter(
        node_id__in=node_ids, product_id__in=product_ids, started_at__gte=window_start
    ).values_list("pk", "node_id", "product_id", "starting_sale_id", "started_at", "status"):
        start = starts.get((node_id, product_id))
        if start is None or started_at < start or (node_id, product_id, starting_sale) in fresh_keys:
            continue
        if status == NegativeStockStatus.RESOLVED:
            stale_resolved.add(pk)
        else:
            stale_open.append(pk)
    if stale_open:
        # Still open and unresolved: the recomputed episode that covers its time replaces it.
        NegativeStockEvent.objects.filter(pk__in=stale_open).delete()
    if stale_resolved:
        NegativeStockEvent.objects.filter(pk__in=stale_resolved).exclude(
            resolution_note__contains=STALE_RESOLVED_NOTE.strip()
        ).update(resolution_note=Concat(F("resolution_note"), Value(STALE_RESOLVED_NOTE)))
    if not episodes:
        return stale_resolved

    NegativeStockEvent.objects.bulk_create(
        [
            NegativeStockEvent(
                node_id=e.node_id,
                product_id=e.product_id,
                starting_sale_id=e.starting_sale,
                started_at=e.started_at,
                quantity_before=e.quantity_before,
                quantity_after=e.quantity_after,
                lowest_quantity=e.lowest_quantity,
                ended_at=e.ended_at,
            )
            for e in episodes
        ],
        update_conflicts=True,
        unique_fields=["node", "product", "starting_sale"],
        update_fields=["started_at", "quantity_before", "quantity_after", "lowest_quantity", "ended_at"],
    )
    ids: dict[tuple, int] = {
        (n, p, s): pk
        for pk, n, p, s in NegativeStockEvent.objects.filter(
            starting_sale_id__in={e.starting_sale for e in episodes}
        ).values_list("pk", "node_id", "product_id", "starting_sale_id")
    }
    through = NegativeStockEvent.sales.through
    event_ids = [ids[(e.node_id, e.product_id, e.starting_sale)] for e in episodes]
    through.objects.filter(negativestockevent_id__in=event_ids).delete()
    memberships: list[Any] = []
    for event_id, episode in zip(event_ids, episodes, strict=True):
        memberships.extend(
            through(negativestockevent_id=event_id, sale_id=sale_id) for sale_id in dict.fromkeys(episode.sales)
        )
    through.objects.bulk_create(memberships)
    return stale_resolved
