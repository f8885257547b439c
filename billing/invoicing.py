"""DIAN invoice numbering: which resolution numbers a terminal's sales, taking consecutive
numbers for online sales, numbering deferred offline sales after sync, and the warnings
staff and terminals see before a range runs out or a resolution expires.

Who numbers what (DESIGN, "Offline devices sharing one invoice range hand out the same
number"):

* ``terminal`` level: the register owns its range and numbers every sale itself, online
  and offline. The server only checks the number (ingest) and moves the resolution's
  ``next_number`` forward past what it accepted (:func:`invoice_resolution_advance`).
* ``node`` and ``institution`` level: only the server hands out numbers. Online sales
  get theirs while they are stored (:func:`invoice_number_take`); offline sales arrive
  without one and are numbered by reconciliation in time-of-sale order
  (:func:`invoices_deferred_assign`).

Every number is unique per resolution by the database constraint
``sale_invoice_number_unique``; the services below keep the numbers gap-free by taking
them under the resolution's row lock inside the caller's transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Max, Q, QuerySet, Value
from django.db.models.functions import Greatest, Least
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from rest_framework import status

from billing.models import InvoiceResolution
from billing.tasks import invoices_pending_assign_enqueue
from nodes.models import Institution, NumberingLevel, Terminal, TerminalKind
from paygo.bulk_insert import array_param, columns_insert
from paygo.errors import ApplicationError
from sales.models import FlagCode, InvoiceSource, Sale, SaleFlag

logger = logging.getLogger(__name__)

# Warn when this share of a range is used, and this many days before a resolution expires.
NEAR_EXHAUSTION_PERCENT = 90
NEAR_EXPIRY_DAYS = 30
# Levels at which the server, not the register, numbers invoices (offline ones after sync).
SERVER_NUMBERING_LEVELS = frozenset({NumberingLevel.NODE, NumberingLevel.INSTITUTION})


def invoice_deferred(*, offline: bool, invoice_number: int | None, numbering_level: str) -> bool:
    """An offline sale the server numbers after sync (node or institution level) and has
    not numbered yet. :data:`DEFERRED_Q` is the same rule as a filter on sales."""
    return offline and invoice_number is None and numbering_level in SERVER_NUMBERING_LEVELS


DEFERRED_Q = Q(offline=True, invoice_number__isnull=True, node__invoice_numbering_level__in=SERVER_NUMBERING_LEVELS)


class InvoiceError(ApplicationError):
    """No invoice number can be given. ``code`` is one of the three constants below."""

    RANGE_EXHAUSTED = "invoice_range_exhausted"
    RESOLUTION_EXPIRED = "invoice_resolution_expired"
    RESOLUTION_MISSING = "invoice_resolution_missing"

    code = RESOLUTION_MISSING
    # The contract answers an online sale that cannot be numbered with 422.
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = "No hay una resolución de facturación con consecutivos disponibles."


# ---------------------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------------------


def _owner_filter(*, level: str, institution_id: int, node_id: int | None, terminal_id: int | None) -> Q:
    """The resolutions owned by whoever numbers at ``level`` (the institution, a node or a terminal)."""
    if level == NumberingLevel.TERMINAL:
        return Q(institution_id=institution_id, level=level, terminal_id=terminal_id)
    if level == NumberingLevel.NODE:
        return Q(institution_id=institution_id, level=level, node_id=node_id)
    return Q(institution_id=institution_id, level=NumberingLevel.INSTITUTION)


def _terminal_owner_filter(terminal: Terminal) -> Q:
    node = terminal.node
    return _owner_filter(
        level=node.invoice_numbering_level,
        institution_id=node.institution_id,
        node_id=node.pk,
        terminal_id=terminal.pk,
    )


def _valid_on(on: date) -> Q:
    return Q(valid_from__lte=on, valid_until__gte=on)


def _has_numbers(count: int = 1) -> Q:
    return Q(range_to__gte=F("next_number") + (count - 1))


def invoice_resolution_for(*, terminal: Terminal, on: date) -> InvoiceResolution | None:
    """The resolution that numbers ``terminal``'s sales on the Bogotá date ``on``.

    The owner follows the node's numbering level (terminal → the terminal's own, node →
    the node's, institution → the institution's). Among the active resolutions valid on
    ``on`` with numbers left, the one with the lowest ``range_from`` wins, so a new
    resolution takes over once the old one is exhausted. ``None`` when there is none.

    Read-only, no locks; one query (plus the terminal's node if not already loaded).
    """
    return (
        InvoiceResolution.objects.filter(_terminal_owner_filter(terminal), _valid_on(on), _has_numbers(), active=True)
        .order_by("range_from", "pk")
        .first()
    )


def _unavailable_error(*, candidates: QuerySet[InvoiceResolution], on: date, count: int) -> InvoiceError:
    """Explain why none of ``candidates`` (the owner's active resolutions) can give ``count`` numbers on ``on``."""
    rows = list(candidates.values("number", "valid_from", "valid_until", "next_number", "range_to"))
    if not rows:
        return InvoiceError(
            "No hay una resolución de facturación activa para esta caja.", code=InvoiceError.RESOLUTION_MISSING
        )
    valid = [r for r in rows if r["valid_from"] <= on <= r["valid_until"]]
    if valid:
        left = sum(max(0, r["range_to"] - r["next_number"] + 1) for r in valid)
        return InvoiceError(
            "Se agotó el rango de consecutivos de la resolución de facturación.",
            code=InvoiceError.RANGE_EXHAUSTED,
            details={"requested": count, "left": left, "resolutions": [r["number"] for r in valid]},
        )
    return InvoiceError(
        f"La resolución de facturación no está vigente el {on:%d/%m/%Y}.",
        code=InvoiceError.RESOLUTION_EXPIRED,
        details={
            "date": on.isoformat(),
            "resolutions": [
                {
                    "number": r["number"],
                    "valid_from": r["valid_from"].isoformat(),
                    "valid_until": r["valid_until"].isoformat(),
                }
                for r in rows
            ],
        },
    )


def invoice_unavailable_error(*, terminal: Terminal, on: date, count: int = 1) -> InvoiceError | None:
    """Why ``terminal``'s sales on ``on`` cannot be numbered now, or ``None`` when they can.

    The same choice of resolution as :func:`invoice_number_take` (and, at terminal level,
    the register's own), without taking anything: the online path asks first so that a
    sale breaking other rules lists this breach together with them and never consumes a
    number. A concurrent sale may still take the last number between this check and the
    take; the take then raises the same error. Read-only, no locks; one query when a
    resolution is usable, two when not.
    """
    candidates = InvoiceResolution.objects.filter(_terminal_owner_filter(terminal), active=True)
    if candidates.filter(_valid_on(on), _has_numbers(count)).exists():
        return None
    return _unavailable_error(candidates=candidates, on=on, count=count)


# ---------------------------------------------------------------------------------------
# Online numbering
# ---------------------------------------------------------------------------------------


def _numbers_reserve(*, resolution_id: int, count: int, on: date | None = None) -> int | None:
    """Move ``next_number`` forward by ``count`` in one statement; return the first number taken.

    ``None`` when the resolution is inactive, not valid on ``on`` (when given) or has fewer
    than ``count`` numbers left. The UPDATE takes the row lock, held until the caller's
    transaction ends: a concurrent taker waits and then sees the new ``next_number``.
    """
    table = connection.ops.quote_name(InvoiceResolution._meta.db_table)
    sql = (
        # The table name comes from the model's meta; every value is a query parameter.
        f"UPDATE {table} SET next_number = next_number + %s "
        "WHERE id = %s AND active = %s AND next_number + %s - 1 <= range_to"
    )
    params: list[Any] = [count, resolution_id, True, count]
    if on is not None:
        sql += " AND valid_from <= %s AND valid_until >= %s"
        params += [on, on]
    sql += " RETURNING next_number"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0] - count


def _require_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{name} must run inside the transaction that stores the sales it numbers")


def invoice_number_take(*, terminal: Terminal, on: date, count: int = 1) -> tuple[InvoiceResolution, list[int]]:
    """Take ``count`` consecutive invoice numbers for an ONLINE sale of ``terminal``.

    For node- and institution-level numbering only (a terminal-level register numbers
    its own sales). All ``count`` numbers come from one resolution: the active one valid
    on ``on`` (Bogotá date of the sale) with the lowest ``range_from`` that still has
    ``count`` numbers left.

    Must run inside the sale's transaction (``RuntimeError`` otherwise). Locks: the
    chosen resolution row, via ``UPDATE … RETURNING``, until that transaction ends, so
    concurrent sales of the same owner are numbered one after the other, gap-free. If
    the transaction rolls back, the rollback undoes the increment too and the numbers
    go back to the pool; that is why it must not run in a transaction of its own.
    Keep the transaction short: every sale of the owner waits for it.

    Not idempotent: each call takes new numbers (the caller's sale-id uniqueness makes
    a retried sale a duplicate before it gets here).

    Raises :class:`InvoiceError` with ``invoice_range_exhausted`` (valid resolutions
    exist but have too few numbers left), ``invoice_resolution_expired`` (the owner's
    active resolutions are all outside their validity dates on ``on``) or
    ``invoice_resolution_missing`` (no active resolution at all).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    _require_transaction("invoice_number_take")
    node = terminal.node
    if node.invoice_numbering_level == NumberingLevel.TERMINAL:
        raise ValueError("terminal-level registers number their own sales; use invoice_resolution_advance")
    candidates = InvoiceResolution.objects.filter(_terminal_owner_filter(terminal), active=True)
    usable = candidates.filter(_valid_on(on), _has_numbers(count)).order_by("range_from", "pk")
    for resolution in usable:
        # The row may have changed (or been exhausted by a concurrent sale) since the
        # SELECT: the guarded UPDATE is the truth, and we fall through to the next one.
        first = _numbers_reserve(resolution_id=resolution.pk, count=count, on=on)
        if first is not None:
            resolution.next_number = first + count
            return resolution, list(range(first, first + count))
    raise _unavailable_error(candidates=candidates, on=on, count=count)


def invoice_resolution_advance(*, resolution_id: int, highest_used: int) -> int:
    """Move ``next_number`` past a number a terminal-level register used and the server accepted.

    One UPDATE: ``next_number = GREATEST(next_number, MIN(highest_used + 1, range_to + 1))``
    (``MAX``/``MIN`` on SQLite). Never moves backwards, never past ``range_to + 1``.
    Idempotent and order-free: batches can arrive in any order or twice. Locks: the
    resolution row until the caller's transaction ends. Returns the rows updated (0 or 1).
    """
    return InvoiceResolution.objects.filter(pk=resolution_id).update(
        next_number=Greatest(F("next_number"), Least(Value(highest_used + 1), F("range_to") + 1))
    )


# ---------------------------------------------------------------------------------------
# Deferred (offline) numbering
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Owner:
    level: str
    institution_id: int
    node_id: int | None

    def q(self) -> Q:
        return _owner_filter(
            level=self.level, institution_id=self.institution_id, node_id=self.node_id, terminal_id=None
        )


@dataclass
class _DeferredSale:
    """What numbering needs of a sale waiting for its server number."""

    pk: UUID
    occurred_at: Any
    terminal_id: int
    seq: int
    business_date: date
    owner: _Owner


_DEFERRED_VALUES = ("pk", "occurred_at", "terminal_id", "seq", "business_date", "institution_id", "node_id")


def _deferred_sale(
    pk: UUID,
    occurred_at: datetime,
    terminal_id: int,
    seq: int,
    business_date: date,
    institution_id: int,
    node_id: int,
    level: str,
) -> _DeferredSale:
    owner = _Owner(level, institution_id, node_id if level == NumberingLevel.NODE else None)
    return _DeferredSale(pk, occurred_at, terminal_id, seq, business_date, owner)


def _deferred_rows(queryset: QuerySet[Sale]) -> list[_DeferredSale]:
    return [_deferred_sale(*row) for row in queryset.values_list(*_DEFERRED_VALUES, "node__invoice_numbering_level")]


def _deferred_sales(sale_ids: list[UUID]) -> list[_DeferredSale]:
    if not sale_ids:
        return []
    return _deferred_rows(Sale.objects.filter(DEFERRED_Q, pk__any=list(sale_ids)).order_by())


# Offline sales already reconciled that still wait for a server number: their owner's
# range was exhausted, expired or missing when they were reconciled. Served by the
# partial index ``sale_invoice_pending``.
PENDING_Q = DEFERRED_Q & Q(reconciled_at__isnull=False)
# How many pending sales of one owner a single run numbers (the next run takes the rest).
PENDING_BATCH = 5000


def _pending_owner_q(owner: _Owner) -> Q:
    if owner.level == NumberingLevel.NODE:
        return Q(node_id=owner.node_id, node__invoice_numbering_level=NumberingLevel.NODE)
    return Q(institution_id=owner.institution_id, node__invoice_numbering_level=NumberingLevel.INSTITUTION)


def _pending_sales(owners: Iterable[_Owner], *, limit: int) -> list[_DeferredSale]:
    owner_q = Q()
    for owner in owners:
        owner_q |= _pending_owner_q(owner)
    return _deferred_rows(Sale.objects.filter(PENDING_Q, owner_q).order_by("occurred_at", "terminal_id", "seq")[:limit])


def invoices_pending_count() -> int:
    """How many reconciled offline sales still wait for an invoice number. Read only."""
    return Sale.objects.filter(PENDING_Q).count()


def invoices_deferred_assign(*, sale_ids: Iterable[UUID | str]) -> int:
    """Number the OFFLINE sales among ``sale_ids`` that arrived without an invoice, and
    the owners' pending backlog with them.

    For node- and institution-level numbering (a terminal-level sale always carries the
    register's own number). Besides ``sale_ids``, the run takes up to ``PENDING_BATCH``
    sales of the same owners that an earlier reconciliation left unnumbered (range
    exhausted, expired or missing then), so a backlog is numbered before, not after,
    the sales that follow it. Everything is numbered in ``(occurred_at, terminal_id,
    seq)`` order, not arrival order, each from the owner's active resolution valid on the
    sale's Bogotá date with the lowest ``range_from`` that still has numbers. Set-based:
    per resolution one UPDATE takes the whole block of numbers, then one bulk UPDATE
    writes the sales and one INSERT adds their ``invoice_deferred`` flags; the sales get
    ``invoice_source = "server"``.

    Locks: every active resolution of the owners involved, ``SELECT … FOR UPDATE`` in
    ``pk`` order, until the transaction ends (its own, or the caller's if there is one);
    the sales still unnumbered are read only after the locks are held.

    Idempotent: already-numbered sales are skipped, so a second run changes nothing. Two
    concurrent runs are serialized by the resolution locks, the second sees what the
    first committed, so no sale gets two numbers; ``sale_invoice_number_unique`` makes
    one number for two sales impossible regardless.

    When an owner's numbers run out (or no resolution is valid on a sale's date), the
    sales that fit are numbered and the rest stay unnumbered for the next run
    (:func:`invoices_pending_assign`, periodic and after a resolution is saved); that is
    logged as a warning with the counts. Returns how many sales this run numbered.
    """
    ids = list(dict.fromkeys(sale_ids))
    if not ids:
        return 0
    with transaction.atomic():
        candidates = _deferred_sales(ids)
        if not candidates:
            return 0
        return len(_owners_number(owners={sale.owner for sale in candidates}, sale_ids=[s.pk for s in candidates]))


def invoices_reconciled_assign(*, sales: Iterable[tuple], reconciled_at: datetime) -> set[UUID]:
    """:func:`invoices_deferred_assign` for a reconcile chunk, with what it already read.

    ``sales``: ``(pk, occurred_at, terminal_id, seq, business_date, institution_id,
    node_id, node's numbering level)`` of sales that :func:`invoice_deferred` says wait
    for a number. The caller holds their row locks and they are unreconciled, so no other
    run can number them (the pending run takes only reconciled sales): they are not read
    again. ``reconciled_at`` is written on the numbered ones with their numbers (in the
    same statement on PostgreSQL), so the chunk writes each of those sales once; returns
    the pks of the sales numbered, and the caller marks the rest. Same numbering, locks
    and warnings otherwise.
    """
    candidates = [_deferred_sale(*row) for row in sales]
    if not candidates:
        return set()
    return set(
        _owners_number(
            owners={sale.owner for sale in candidates},
            sale_ids=[s.pk for s in candidates],
            reconciled_at=reconciled_at,
            read=candidates,
        )
    )


def invoices_pending_assign() -> int:
    """Number the reconciled offline sales still waiting for a number, owner by owner.

    Run by beat (``number-pending-invoices``) and after staff save a resolution, so a
    backlog left by an exhausted, expired or missing range ends with numbers once a
    resolution can give them. One transaction per owner (level, institution, node), at
    most ``PENDING_BATCH`` sales each; locks as :func:`invoices_deferred_assign`.
    Idempotent. Returns how many sales it numbered.
    """
    owners = {
        _Owner(row["node__invoice_numbering_level"], row["institution_id"], row["node_id"])
        if row["node__invoice_numbering_level"] == NumberingLevel.NODE
        else _Owner(row["node__invoice_numbering_level"], row["institution_id"], None)
        for row in Sale.objects.filter(PENDING_Q)
        .values("institution_id", "node_id", "node__invoice_numbering_level")
        .order_by()
        .distinct()
    }
    numbered = 0
    for owner in sorted(owners, key=lambda o: (o.institution_id, o.node_id or 0, o.level)):
        with transaction.atomic():
            numbered += len(_owners_number(owners={owner}, sale_ids=[]))
    return numbered


def _owners_number(
    *,
    owners: set[_Owner],
    sale_ids: list[UUID],
    reconciled_at: datetime | None = None,
    read: list[_DeferredSale] | None = None,
) -> list[UUID]:
    """Number ``sale_ids`` and the owners' pending backlog. Call inside a transaction.
    Returns the pks of the sales numbered.

    ``read``: ``sale_ids`` as already read by a caller that holds their row locks (they
    cannot change under us); otherwise they are read after the resolution locks.
    ``reconciled_at``: written on the numbered sales that have none yet."""
    owner_q = Q()
    for owner in owners:
        owner_q |= owner.q()
    locked = list(InvoiceResolution.objects.select_for_update().filter(owner_q, active=True).order_by("pk"))
    by_owner: dict[_Owner, list[InvoiceResolution]] = defaultdict(list)
    for resolution in sorted(locked, key=lambda r: (r.range_from, r.pk)):
        by_owner[_Owner(resolution.level, resolution.institution_id, resolution.node_id)].append(resolution)
    # Read after the locks: a concurrent run may have numbered some of them meanwhile. The
    # backlog is read only for owners with numbers left (no point otherwise), at most as
    # many sales as they have numbers.
    left = {owner: sum(max(0, r.range_to - r.next_number + 1) for r in by_owner.get(owner, [])) for owner in owners}
    numberable = [owner for owner in owners if left[owner]]
    by_pk = {}
    if numberable:
        limit = min(PENDING_BATCH, sum(left[owner] for owner in numberable))
        by_pk = {sale.pk: sale for sale in _pending_sales(numberable, limit=limit)}
    by_pk.update((sale.pk, sale) for sale in (read if read is not None else _deferred_sales(sale_ids)))
    sales = sorted(by_pk.values(), key=lambda s: (s.occurred_at, s.terminal_id, s.seq))

    taken: dict[int, int] = defaultdict(int)  # resolution pk -> numbers handed out in this run
    numbered: list[tuple[_DeferredSale, InvoiceResolution, int]] = []
    left_behind: dict[_Owner, int] = defaultdict(int)
    for sale in sales:
        for resolution in by_owner.get(sale.owner, []):
            number = resolution.next_number + taken[resolution.pk]
            if resolution.valid_from <= sale.business_date <= resolution.valid_until and number <= resolution.range_to:
                taken[resolution.pk] += 1
                numbered.append((sale, resolution, number))
                break
        else:
            left_behind[sale.owner] += 1

    for resolution_pk, count in sorted(taken.items()):
        resolution = next(r for r in locked if r.pk == resolution_pk)
        first = _numbers_reserve(resolution_id=resolution_pk, count=count)
        # We hold the row lock, so the block must start where we read it.
        if first != resolution.next_number:
            raise RuntimeError(f"resolution {resolution_pk} moved while locked ({first} != {resolution.next_number})")

    if numbered:
        _sale_invoices_write(numbered, reconciled_at=reconciled_at)
        columns_insert(
            SaleFlag,
            {
                "sale": [sale.pk for sale, _, _ in numbered],
                "code": [FlagCode.INVOICE_DEFERRED] * len(numbered),
                "detail": [
                    {"resolution": resolution.number, "prefix": resolution.prefix, "number": number}
                    for _, resolution, number in numbered
                ],
                "created_at": [timezone.now()] * len(numbered),
            },
            on_conflict_do_nothing=True,
        )
    for owner, count in left_behind.items():
        logger.warning(
            "%d deferred invoices left unnumbered (level=%s institution=%s node=%s): "
            "no active resolution valid on their date with numbers left",
            count,
            owner.level,
            owner.institution_id,
            owner.node_id,
            extra={
                "level": owner.level,
                "institution_id": owner.institution_id,
                "node_id": owner.node_id,
                "count": count,
            },
        )
    return [sale.pk for sale, _, _ in numbered]


def _sale_invoices_write(
    numbered: list[tuple[_DeferredSale, InvoiceResolution, int]], *, reconciled_at: datetime | None = None
) -> None:
    """Write resolution, prefix, number and ``invoice_source = "server"`` on the sales, and
    ``reconciled_at`` where still empty when given: one ``UPDATE … FROM unnest`` per
    resolution on PostgreSQL, ``bulk_update`` (and an ``UPDATE`` for ``reconciled_at``)
    elsewhere."""
    if connection.vendor != "postgresql":
        sales = []
        for sale, resolution, number in numbered:
            sales.append(
                Sale(
                    pk=sale.pk,
                    invoice_resolution=resolution,
                    invoice_prefix=resolution.prefix,
                    invoice_number=number,
                    invoice_source=InvoiceSource.SERVER,
                )
            )
        Sale.objects.bulk_update(sales, ["invoice_resolution", "invoice_prefix", "invoice_number", "invoice_source"])
        if reconciled_at is not None:
            Sale.objects.filter(pk__in=[sale.pk for sale in sales], reconciled_at__isnull=True).update(
                reconciled_at=reconciled_at
            )
        return
    by_resolution: dict[int, tuple[InvoiceResolution, list[UUID], list[int]]] = {}
    for sale, resolution, number in numbered:
        entry = by_resolution.setdefault(resolution.pk, (resolution, [], []))
        entry[1].append(sale.pk)
        entry[2].append(number)
    table = connection.ops.quote_name(Sale._meta.db_table)
    # One write per sale: a second UPDATE of the same rows (reconciled_at) would store
    # every row version and its index entries twice.
    reconciled_sql = ", reconciled_at = COALESCE(reconciled_at, %s)" if reconciled_at is not None else ""
    with connection.cursor() as cursor:
        for resolution, ids, numbers in by_resolution.values():
            cursor.execute(
                f"UPDATE {table} SET invoice_resolution_id = %s, invoice_prefix = %s,"
                f" invoice_number = n.number, invoice_source = %s{reconciled_sql}"
                f" FROM unnest(%s::uuid[], %s::bigint[]) AS n(id, number) WHERE {table}.id = n.id",
                [resolution.pk, resolution.prefix, InvoiceSource.SERVER]
                + ([reconciled_at] if reconciled_at is not None else [])
                + [array_param(ids), array_param(numbers)],
            )


# ---------------------------------------------------------------------------------------
# Warnings
# ---------------------------------------------------------------------------------------


def resolution_usage(resolution: InvoiceResolution) -> tuple[int, int, int]:
    """``(used, left, size)`` of a resolution's range, from ``next_number``."""
    size = resolution.range_to - resolution.range_from + 1
    used = min(max(resolution.next_number - resolution.range_from, 0), size)
    return used, size - used, size


def resolution_warnings(*, resolution: InvoiceResolution, today: date) -> list[str]:
    """Spanish warnings for staff and terminals about an active resolution on ``today``.

    Exhausted, or at least 90 % of the range used; expired, or within 30 days of
    ``valid_until``. An inactive resolution numbers nothing and has no warnings. Pure.
    Keep in step with :func:`resolutions_with_warnings_q`.
    """
    if not resolution.active:
        return []
    warnings = []
    used, left, size = resolution_usage(resolution)
    if left == 0:
        warnings.append(f"Rango agotado: se usaron los {size} consecutivos de la resolución {resolution.number}.")
    elif used * 100 >= size * NEAR_EXHAUSTION_PERCENT:
        percent = used * 100 // size
        warnings.append(
            f"Se ha usado el {percent} % del rango de la resolución {resolution.number}; quedan {left} consecutivos."
        )
    if resolution.valid_until < today:
        warnings.append(f"Resolución {resolution.number} vencida desde el {resolution.valid_until:%d/%m/%Y}.")
    elif (resolution.valid_until - today).days <= NEAR_EXPIRY_DAYS:
        days = (resolution.valid_until - today).days
        when = "hoy" if days == 0 else ("mañana" if days == 1 else f"en {days} días")
        warnings.append(f"La resolución {resolution.number} vence {when} ({resolution.valid_until:%d/%m/%Y}).")
    return warnings


def resolutions_with_warnings_q(*, today: date) -> Q:
    """The resolutions :func:`resolution_warnings` has something to say about, as a filter.

    Keep in step with :func:`resolution_warnings`.
    """
    size = F("range_to") - F("range_from") + 1
    used = F("next_number") - F("range_from")
    near_exhaustion = GreaterThanOrEqual(used * 100, size * NEAR_EXHAUSTION_PERCENT)
    return Q(active=True) & (
        Q(near_exhaustion)
        | Q(next_number__gt=F("range_to"))
        | Q(valid_until__lte=today + timedelta(days=NEAR_EXPIRY_DAYS))
    )


def invoicing_warnings_for_terminal(*, terminal: Terminal, today: date) -> list[str]:
    """Spanish warnings about the resolution that numbers ``terminal``'s sales on ``today``.

    For the config endpoint's ``invoicing.warnings``. When no resolution can number the
    terminal's sales, says why (none, exhausted or expired) instead. Kitchen terminals do
    not sell: none. Read-only, no locks; one or two queries.
    """
    if terminal.kind == TerminalKind.KITCHEN:
        return []
    resolution = invoice_resolution_for(terminal=terminal, on=today)
    if resolution is not None:
        return resolution_warnings(resolution=resolution, today=today)
    candidates = InvoiceResolution.objects.filter(_terminal_owner_filter(terminal), active=True)
    error = _unavailable_error(candidates=candidates, on=today, count=1)
    latest = candidates.order_by("-range_from", "-pk").first()
    if latest is None:
        return [error.message]
    # The warnings of the last resolution say what happened (exhausted, expired) with its number.
    return resolution_warnings(resolution=latest, today=today) or [error.message]


# ---------------------------------------------------------------------------------------
# Validation (admin) and saving
# ---------------------------------------------------------------------------------------


def resolution_validate(*, resolution: InvoiceResolution) -> None:
    """Check a resolution before it is saved; raise ``ValidationError`` with Spanish messages by field.

    Ranges of the same prefix within an institution must not overlap (checked against
    the database, inactive resolutions included: their numbers may have been printed);
    the owner must match the level and belong to the institution; ``range_from ≤
    range_to``; ``next_number`` within ``[range_from, range_to + 1]`` and, for an
    existing resolution, past every number its sales already carry; ``valid_from ≤
    valid_until``. Read-only; call it under :func:`resolution_save`'s lock to make the
    overlap check race-free.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    r = resolution
    institution_id = r.institution_id

    if r.level == NumberingLevel.INSTITUTION:
        if r.node_id or r.terminal_id:
            errors["level"].append("Una resolución de nivel institución no lleva nodo ni caja.")
    elif r.level == NumberingLevel.NODE:
        if not r.node_id:
            errors["node"].append("Indique el nodo dueño de la resolución.")
        elif institution_id and r.node.institution_id != institution_id:
            errors["node"].append("El nodo no pertenece a la institución de la resolución.")
        if r.terminal_id:
            errors["terminal"].append("Una resolución de nivel nodo no lleva caja.")
    elif r.level == NumberingLevel.TERMINAL:
        if not r.terminal_id:
            errors["terminal"].append("Indique la caja dueña de la resolución.")
        else:
            terminal = r.terminal
            if institution_id and terminal.node.institution_id != institution_id:
                errors["terminal"].append("La caja no pertenece a un nodo de la institución de la resolución.")
            if terminal.kind == TerminalKind.KITCHEN:
                errors["terminal"].append("Una terminal de cocina no factura.")
            if r.node_id and r.node_id != terminal.node_id:
                errors["node"].append("El nodo debe ser el de la caja (o quedar vacío).")

    ranges_ok = r.range_from is not None and r.range_to is not None
    if ranges_ok and r.range_from > r.range_to:
        errors["range_to"].append("El rango debe terminar en un número mayor o igual al inicial.")
        ranges_ok = False
    if r.valid_from and r.valid_until and r.valid_from > r.valid_until:
        errors["valid_until"].append("La vigencia debe terminar en o después de la fecha inicial.")
    if ranges_ok and r.next_number is not None:
        if not r.range_from <= r.next_number <= r.range_to + 1:
            errors["next_number"].append(
                f"El siguiente número debe estar entre {r.range_from} y {r.range_to + 1} (rango agotado)."
            )
        elif r.pk:
            highest = Sale.objects.filter(invoice_resolution_id=r.pk).aggregate(m=Max("invoice_number"))["m"]
            if highest is not None and r.next_number <= highest:
                errors["next_number"].append(
                    f"Ya hay ventas facturadas hasta el {highest}; el siguiente número debe ser mayor."
                )
    if ranges_ok and institution_id:
        overlapping = (
            InvoiceResolution.objects.filter(
                institution_id=institution_id,
                prefix=r.prefix,
                range_from__lte=r.range_to,
                range_to__gte=r.range_from,
            )
            .exclude(pk=r.pk)
            .order_by("range_from")
            .first()
        )
        if overlapping is not None:
            errors["range_from"].append(
                f"El rango se cruza con el de la resolución {overlapping.number} "
                f"({overlapping.prefix or 'sin prefijo'} {overlapping.range_from}–{overlapping.range_to})."
            )
    if errors:
        raise ValidationError(dict(errors))


@transaction.atomic
def resolution_save(*, resolution: InvoiceResolution) -> InvoiceResolution:
    """Validate and save a resolution (admin). Not idempotent for new rows (each call creates one).

    Locks: the institution row (``SELECT … FOR UPDATE``) until commit, so two staff
    saving overlapping ranges at once are checked one after the other. On PostgreSQL the
    ``resolution_range_no_overlap`` exclusion constraint (migration 0003) backs this up.
    Raises ``ValidationError`` like :func:`resolution_validate`. After the commit, offline
    sales left without a number (:func:`invoices_pending_assign`) are numbered from it.
    """
    Institution.objects.select_for_update().filter(pk=resolution.institution_id).exists()
    resolution_validate(resolution=resolution)
    resolution.save()
    invoices_pending_assign_enqueue()
    return resolution


def today_bogota() -> date:
    """Today's business date (``America/Bogota``, the project's time zone)."""
    return timezone.localdate()
