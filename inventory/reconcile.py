"""Stock effects of reconciled sales: sale movements in the stock ledger, and the
negative-stock episodes recomputed in time-of-sale order.

Order of movements: ``(occurred_at, non-sale before sale, terminal, seq, line position,
id)`` — the time order of the sales (DESIGN principle 5), made total and stable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat

from inventory.ledger import sale_stock_movements_post
from inventory.models import NegativeStockEvent, NegativeStockStatus, NodeStock, StockMovement
from sales.models import FlagCode, Sale, SaleLine
from sales.reconcile_flags import FlagEvaluation, time_ordered_flags
from sales.rules import LineFacts

ZERO = Decimal("0")
QUANTITY_STEP = Decimal("0.001")  # inventory.models.QUANTITY: 3 decimal places
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

    Online sales already got theirs at ingest; a retried reconcile finds its own. Both are
    skipped by the unique ``StockMovement.sale_line``
    (:func:`~inventory.ledger.sale_stock_movements_post`, ``ON CONFLICT DO NOTHING``), so
    a line is never counted twice. Returns the number of movements appended.
    """
    return sale_stock_movements_post(
        sale_line_ids=[line.line_id for line in lines],
        node_ids=[line.node_id for line in lines],
        product_ids=[line.product_id for line in lines],
        quantities=[line.quantity for line in lines],
        occurred_at=[line.occurred_at for line in lines],
    )


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
    # Set for a stored episode continued from a pair's `since`: its members before `since`
    # are kept as stored, only those walked are recomputed.
    event_id: int | None = None
    continued: bool = False


def _movement_order(row: tuple) -> tuple:
    # Written once more in SQL, reversed, by _members_lowest_before: change both together
    # (the convergence property compares episodes' lowest stock with a walk in this order).
    _node, _product, _quantity, occurred_at, pk, sale_id, terminal_id, seq, position = row[:9]
    if sale_id is None:
        return (occurred_at, 0, 0, 0, 0, pk)
    return (occurred_at, 1, terminal_id, seq, position, pk)


def negative_stock_recompute(
    *, pairs_since: dict[Pair, datetime], reconciling: Collection[UUID] = ()
) -> FlagEvaluation:
    """Recompute the negative-stock episodes of ``(node, product)`` pairs from a time on.

    For each pair the running stock is walked in time order from ``since``. An episode
    starts at the first sale line made while the stock is below zero (normally the one
    taking it from ≥0 to <0) and ends when stock is ≥0 again. Episodes are upserted by
    ``(node, product, starting_sale)`` with their sales; stored episodes of the window
    that no longer start there are deleted when still open, or kept with a note when
    finance already resolved them.

    **An episode still below zero at ``since`` is continued, not re-walked.** Nothing
    before ``since`` changed since it was last computed (every movement is followed by a
    recomputation from its own time: reconciliation for sales,
    :func:`~inventory.services.stock_movement_record` for the rest), so its start, its
    members before ``since`` and the lowest stock they reached still hold: the walk
    resumes at ``since`` with that state. Re-walking it from its start made every chunk
    cost as much as the whole episode — a product sold out at 10:00 and never restocked
    made the whole afternoon's reconciliation slower and slower. The lowest stock its
    members before ``since`` reached is the stored ``lowest_quantity`` when nothing the
    pair holds from ``since`` on was walked before (only movements of ``reconciling``,
    the sales being reconciled now: the usual case of sales arriving in time order);
    otherwise it is computed from the ledger in one SQL window statement.

    **Opening stock** is the materialized stock minus the movements walked, read in the
    same statement, so its cost does not grow with the ledger's history.

    Set-based: a fixed number of queries for any number of pairs (episodes crossing
    ``since``, the lowest stock of their members before it, one movement scan, the
    upserts). Idempotent: a rerun with the same ledger writes the same rows. Locks: none
    of its own; the caller holds the node locks (:func:`sales.reconcile_locks.nodes_lock`).

    Returns the ``negative_stock`` evaluation of every sale walked.
    """
    evaluation = FlagEvaluation(code=FlagCode.NEGATIVE_STOCK)
    if not pairs_since:
        return evaluation
    node_ids = {n for n, _ in pairs_since}
    product_ids = {p for _, p in pairs_since}
    window_start = min(pairs_since.values())

    continued = _episodes_crossing(pairs_since)

    # The stock row in the same statement as the movements: one snapshot, so opening =
    # stock - movements walked is exact even while other writers commit.
    stock = NodeStock.objects.filter(node_id=OuterRef("node_id"), product_id=OuterRef("product_id")).values("quantity")[
        :1
    ]
    rows = [
        row
        for row in StockMovement.objects.filter(
            node_id__in=node_ids, product_id__in=product_ids, occurred_at__gte=window_start
        )
        .order_by()  # walked in _movement_order below
        .annotate(stock_now=Subquery(stock))
        .values_list(
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
            "stock_now",
        )
        if (row[0], row[1]) in pairs_since
    ]
    by_pair: dict[Pair, list[tuple]] = defaultdict(list)
    for row in rows:
        by_pair[(row[0], row[1])].append(row)
    # A continued episode's stored lowest is the lowest its members before ``since`` left
    # when every movement of the pair from ``since`` on is one of the sales reconciled now.
    # It may also hold what one of those sales left when an earlier walk met its movement
    # (an online sale's, walked by a receipt's recomputation): never below what this walk
    # finds for it, since all that was added since are sales, which only lower the stock,
    # so the minimum is the same. A movement from ``since`` on of a sale reconciled before,
    # or a receipt, may have been walked with a stock this walk changes: then the lowest
    # before ``since`` is computed from the ledger.
    reconciling = set(reconciling)
    rewalked = {
        pair: episode
        for pair, episode in continued.items()
        if any(r[3] >= pairs_since[pair] and r[5] not in reconciling for r in by_pair[pair])
    }
    lowest_before = _members_lowest_before(rewalked, pairs_since)

    episodes: list[_Episode] = []
    walked: dict[Pair, set[UUID]] = {}
    for pair, start in pairs_since.items():
        pair_rows = by_pair[pair]
        running = ((pair_rows[0][10] if pair_rows else None) or ZERO) - sum((r[2] for r in pair_rows), ZERO)
        current: _Episode | None = None
        if pair in continued:
            current = continued[pair]
            current.lowest_quantity = lowest_before.get(pair, current.lowest_quantity)
            episodes.append(current)
        pair_walked = walked.setdefault(pair, set())
        ordered = sorted(pair_rows, key=_movement_order)
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
            pair_walked.add(sale_id)
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

    stale_resolved = _episodes_store(episodes=episodes, starts=pairs_since, window_start=window_start, walked=walked)

    # A sale is flagged while it belongs to any live episode, including episodes of pairs
    # (or times) outside this window, whose stored detail is kept as it is.
    through = NegativeStockEvent.sales.through
    members = set(
        through.objects.filter(sale_id__any=list(evaluation.evaluated))
        .exclude(negativestockevent_id__in=stale_resolved)
        .values_list("sale_id", flat=True)
    )
    for sale_id in members:
        evaluation.flagged.setdefault(sale_id, None)
    return evaluation


def _episodes_crossing(pairs_since: dict[Pair, datetime]) -> dict[Pair, _Episode]:
    """The stored episodes still below zero at their pair's ``since`` (started before it,
    not ended before it), as the state the walk resumes from. One query."""
    crossing = NegativeStockEvent.objects.filter(
        node_id__in={n for n, _ in pairs_since},
        product_id__in={p for _, p in pairs_since},
        started_at__lt=max(pairs_since.values()),
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gte=min(pairs_since.values())))
    continued: dict[Pair, _Episode] = {}
    for pk, node_id, product_id, starting_sale, started_at, before, after, lowest, ended_at in crossing.order_by(
        "started_at", "pk"
    ).values_list(
        "pk",
        "node_id",
        "product_id",
        "starting_sale_id",
        "started_at",
        "quantity_before",
        "quantity_after",
        "lowest_quantity",
        "ended_at",
    ):
        since = pairs_since.get((node_id, product_id))
        if since is not None and started_at < since and (ended_at is None or ended_at >= since):
            continued[(node_id, product_id)] = _Episode(
                node_id=node_id,
                product_id=product_id,
                starting_sale=starting_sale,
                started_at=started_at,
                quantity_before=before,
                quantity_after=after,
                lowest_quantity=lowest,
                event_id=pk,
                continued=True,
            )
    return continued


def _members_lowest_before(continued: dict[Pair, _Episode], pairs_since: dict[Pair, datetime]) -> dict[Pair, Decimal]:
    """The lowest stock each continued episode reached with its members before ``since``.

    One statement for all pairs, in SQL (no rows travel): the stock after each movement
    is the current stock minus every movement after it in time order (a window sum),
    read in the same snapshot as the stock row; the minimum is taken over the last
    movement of each member sale, as the walk records it.
    """
    if not continued:
        return {}
    quote = connection.ops.quote_name
    occurred = StockMovement._meta.get_field("occurred_at")

    def when(value: datetime) -> Any:
        return occurred.get_db_prep_value(value, connection)

    # Time order of the walk (``_movement_order``), reversed: what comes after a movement.
    after = (
        "PARTITION BY m.node_id, m.product_id ORDER BY m.occurred_at DESC,"
        " CASE WHEN l.sale_id IS NULL THEN 0 ELSE 1 END DESC, COALESCE(s.terminal_id, 0) DESC,"
        " COALESCE(s.seq, 0) DESC, COALESCE(l.position, 0) DESC, m.id DESC"
    )
    scope, scope_params, members, member_params = [], [], [], []
    for (node_id, product_id), episode in continued.items():
        scope.append("(m.node_id = %s AND m.product_id = %s AND m.occurred_at >= %s)")
        scope_params += [node_id, product_id, when(episode.started_at)]
        members.append("(t.negativestockevent_id = %s AND x.node_id = %s AND x.product_id = %s AND x.occurred_at < %s)")
        member_params += [episode.event_id, node_id, product_id, when(pairs_since[(node_id, product_id)])]
    sql = f"""
        SELECT x.node_id, x.product_id, MIN(x.stock_now - x.later)
        FROM (
            SELECT m.node_id, m.product_id, m.occurred_at, l.sale_id, st.quantity AS stock_now,
                   COALESCE(SUM(m.quantity) OVER ({after} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                       AS later,
                   LAG(l.sale_id) OVER ({after}) AS next_sale
            FROM {quote(StockMovement._meta.db_table)} m
            JOIN {quote(NodeStock._meta.db_table)} st ON st.node_id = m.node_id AND st.product_id = m.product_id
            LEFT JOIN {quote(SaleLine._meta.db_table)} l ON l.id = m.sale_line_id
            LEFT JOIN {quote(Sale._meta.db_table)} s ON s.id = l.sale_id
            WHERE {" OR ".join(scope)}
        ) x
        JOIN {quote(NegativeStockEvent.sales.through._meta.db_table)} t ON t.sale_id = x.sale_id
        WHERE ({" OR ".join(members)}) AND (x.next_sale IS NULL OR x.next_sale <> x.sale_id)
        GROUP BY x.node_id, x.product_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, scope_params + member_params)
        return {(node_id, product_id): _quantity(value) for node_id, product_id, value in cursor.fetchall()}


def _quantity(value: Any) -> Decimal:
    """A stock quantity computed in SQL, as the ledger stores it (SQLite may sum to a float)."""
    return (value if isinstance(value, Decimal) else Decimal(str(value))).quantize(QUANTITY_STEP)


def _episodes_store(
    *, episodes: list[_Episode], starts: dict[Pair, datetime], window_start: datetime, walked: dict[Pair, set[UUID]]
) -> set[int]:
    """Upsert the recomputed episodes and retire the window's stale ones.

    Returns the ids of stale episodes kept because they were already resolved.
    """
    fresh_keys = {(e.node_id, e.product_id, e.starting_sale) for e in episodes}
    node_ids = {n for n, _ in starts}
    product_ids = {p for _, p in starts}
    stale_open: list[int] = []
    stale_resolved: set[int] = set()
    for pk, node_id, product_id, starting_sale, started_at, status in (
        NegativeStockEvent.objects.filter(
            node_id__in=node_ids, product_id__in=product_ids, started_at__gte=window_start
        )
        .order_by()
        .values_list("pk", "node_id", "product_id", "starting_sale_id", "started_at", "status")
    ):
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
        for pk, n, p, s in NegativeStockEvent.objects.filter(starting_sale_id__in={e.starting_sale for e in episodes})
        .order_by()
        .values_list("pk", "node_id", "product_id", "starting_sale_id")
    }
    for episode in episodes:
        episode.event_id = ids[(episode.node_id, episode.product_id, episode.starting_sale)]
    _memberships_store(episodes=episodes, walked=walked)
    return stale_resolved


def _memberships_store(*, episodes: list[_Episode], walked: dict[Pair, set[UUID]]) -> None:
    """Write the episodes' sales, only what changed (one read, one DELETE, one INSERT at
    most). An episode continued from ``since`` keeps its members before it: only its
    memberships among the sales walked for its pair are compared."""
    through = NegativeStockEvent.sales.through
    continued_ids = {e.event_id for e in episodes if e.continued}
    fresh_ids = {e.event_id for e in episodes if not e.continued}
    walked_ids = set().union(*walked.values()) if walked else set()
    considered: dict[int, set[UUID]] = defaultdict(set)
    for event_id, sale_id in through.objects.filter(
        Q(negativestockevent_id__in=fresh_ids)
        | Q(negativestockevent_id__in=continued_ids, sale_id__any=list(walked_ids))
    ).values_list("negativestockevent_id", "sale_id"):
        considered[event_id].add(sale_id)
    removed = Q()
    added: list[Any] = []
    for episode in episodes:
        wanted = set(episode.sales)
        stored = considered[episode.event_id]
        if episode.continued:
            stored = stored & walked.get((episode.node_id, episode.product_id), set())
        gone = stored - wanted
        if gone:
            removed |= Q(negativestockevent_id=episode.event_id, sale_id__in=gone)
        added.extend(
            through(negativestockevent_id=episode.event_id, sale_id=sale_id)
            for sale_id in dict.fromkeys(episode.sales)
            if sale_id not in considered[episode.event_id]
        )
    if removed:
        queryset = through.objects.filter(removed)
        queryset._raw_delete(queryset.db)
    if added:
        through.objects.bulk_create(added, ignore_conflicts=True)
