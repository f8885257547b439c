"""Reads behind the «Excepciones offline», «Estado de sincronización» and «Cuarentena»
reports and the dashboard's sales figures.

Kept apart from ``sales/selectors.py`` (the ingest's reads) so both can grow without
stepping on each other.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from nodes.models import Institution, Node, Terminal
from paygo.reporting import business_day_end, business_day_start, business_today
from sales.models import FlagCode, QuarantinedSale, QuarantineStatus, Sale, SaleFlag, SequenceGap

SILENT, ONLINE, INACTIVE = "silent", "online", "inactive"


def _sale_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


# --- Excepciones offline ------------------------------------------------------------------


def sale_flags_list(
    *,
    institution: Institution | None = None,
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    flag: str | None = None,
    offline: bool | None = None,
    q: str = "",
) -> QuerySet[SaleFlag]:
    """Every flag on a sale, with its sale, node, AP and customer.

    Dates are the sale's business day (Bogotá), not when the flag was written: a sale
    uploaded a day late still counts on the day it happened.
    """
    flags = SaleFlag.objects.select_related(
        "sale", "sale__node", "sale__node__institution", "sale__terminal", "sale__customer"
    )
    if institution:
        flags = flags.filter(sale__institution=institution)
    if node:
        flags = flags.filter(sale__node=node)
    if terminal:
        flags = flags.filter(sale__terminal=terminal)
    if date_from:
        flags = flags.filter(sale__business_date__gte=date_from)
    if date_to:
        flags = flags.filter(sale__business_date__lte=date_to)
    if flag:
        flags = flags.filter(code=flag)
    if offline is not None:
        flags = flags.filter(sale__offline=offline)
    if q:
        match = (
            Q(sale__customer__code__icontains=q)
            | Q(sale__customer__name__icontains=q)
            | Q(sale__terminal__code__icontains=q)
        )
        sale_id = _sale_uuid(q)
        if sale_id:
            match |= Q(sale_id=sale_id)
        flags = flags.filter(match)
    return flags


def sale_flag_counts(*, flags: QuerySet[SaleFlag], by: str) -> list[tuple[str, int]]:
    """Counts of the given flags grouped by ``code``, ``node`` or ``day``, largest first
    (``day``: in date order). Labels are what people read."""
    if by == "code":
        rows = flags.order_by().values("code").annotate(n=Count("pk")).order_by("-n", "code")
        labels = dict(FlagCode.choices)
        return [(labels.get(r["code"], r["code"]), r["n"]) for r in rows]
    if by == "node":
        rows = (
            flags.order_by()
            .values("sale__node__code", "sale__node__name")
            .annotate(n=Count("pk"))
            .order_by("-n", "sale__node__code")
        )
        return [(f"{r['sale__node__code']} — {r['sale__node__name']}", r["n"]) for r in rows]
    if by == "day":
        rows = flags.order_by().values("sale__business_date").annotate(n=Count("pk")).order_by("sale__business_date")
        return [(r["sale__business_date"].strftime("%d/%m/%Y"), r["n"]) for r in rows]
    raise ValueError(by)


def offline_sales_today() -> dict[str, int]:
    """Today's (Bogotá) offline sales and how many of them carry a flag: one query."""
    return Sale.objects.filter(offline=True, business_date=business_today()).aggregate(
        count=Count("pk", distinct=True), flagged=Count("pk", distinct=True, filter=Q(flags__isnull=False))
    )


# --- Estado de sincronización --------------------------------------------------------------


def _silent_before(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - settings.PAYGO_TERMINAL_SILENT_AFTER


def _silent_condition(now: datetime | None = None) -> Q:
    """An active AP not heard from within ``PAYGO_TERMINAL_SILENT_AFTER`` (or never)."""
    return Q(active=True) & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=_silent_before(now)))


def terminal_sync_status_list(
    *,
    institution: Institution | None = None,
    node: Node | None = None,
    terminal: Terminal | None = None,
    status: str | None = None,
    kind: str | None = None,
    q: str = "",
    now: datetime | None = None,
) -> QuerySet[Terminal]:
    """Per AP: what it last reported and what the server knows is missing.

    Annotations: ``gap_count`` and ``missing_seq`` (ranges and number of ``seq`` not
    uploaded), ``quarantine_pending`` (its quarantined sales not yet reprocessed or
    discarded), ``silent`` (see :func:`_silent_condition`). Gaps are prefetched for the
    ranges. One query for the rows plus one for the gaps of the page.
    """
    gaps = SequenceGap.objects.filter(terminal=OuterRef("pk")).order_by().values("terminal")
    quarantined = (
        QuarantinedSale.objects.filter(terminal=OuterRef("pk"), status=QuarantineStatus.PENDING)
        .order_by()
        .values("terminal")
    )
    terminals = (
        Terminal.objects.select_related("node", "node__institution")
        .annotate(
            gap_count=Coalesce(Subquery(gaps.annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()),
            missing_seq=Coalesce(
                Subquery(gaps.annotate(n=Sum(F("last_missing") - F("first_missing") + 1)).values("n")),
                0,
                output_field=IntegerField(),
            ),
            quarantine_pending=Coalesce(
                Subquery(quarantined.annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()
            ),
            silent=Case(
                When(_silent_condition(now), then=Value(True)), default=Value(False), output_field=BooleanField()
            ),
        )
        .prefetch_related("seq_gaps")
    )
    if institution:
        terminals = terminals.filter(node__institution=institution)
    if node:
        terminals = terminals.filter(node=node)
    if terminal:
        terminals = terminals.filter(pk=terminal.pk)
    if kind:
        terminals = terminals.filter(kind=kind)
    if status == SILENT:
        terminals = terminals.filter(_silent_condition(now))
    elif status == ONLINE:
        terminals = terminals.filter(active=True, last_seen_at__gte=_silent_before(now))
    elif status == INACTIVE:
        terminals = terminals.filter(active=False)
    if q:
        terminals = terminals.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(node__code__icontains=q))
    return terminals


def silent_terminals_count(now: datetime | None = None) -> int:
    return Terminal.objects.filter(_silent_condition(now)).count()


# --- Cuarentena -------------------------------------------------------------------------------


def quarantined_sales_list(
    *,
    institution: Institution | None = None,
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    error_code: str | None = None,
    q: str = "",
) -> QuerySet[QuarantinedSale]:
    """Quarantined sales with their AP and who processed them. Dates filter the day
    (Bogotá) the sale was received; ``error_code`` matches one code of ``error_codes``."""
    rows = QuarantinedSale.objects.select_related(
        "terminal", "terminal__node", "terminal__node__institution", "processed_by", "resulting_sale"
    )
    if institution:
        rows = rows.filter(terminal__node__institution=institution)
    if node:
        rows = rows.filter(terminal__node=node)
    if terminal:
        rows = rows.filter(terminal=terminal)
    if date_from:
        rows = rows.filter(received_at__gte=business_day_start(date_from))
    if date_to:
        rows = rows.filter(received_at__lt=business_day_end(date_to))
    if status:
        rows = rows.filter(status=status)
    if error_code:
        rows = rows.filter(error_codes__icontains=error_code)
    if q:
        rows = rows.filter(Q(sale_id__icontains=q) | Q(error_codes__icontains=q) | Q(note__icontains=q))
    return rows


def quarantine_error_codes() -> list[str]:
    """The distinct error codes present in quarantine (for the filter's choices)."""
    codes: set[str] = set()
    for joined in QuarantinedSale.objects.order_by().values_list("error_codes", flat=True).distinct():
        codes.update(code.strip() for code in joined.split(",") if code.strip())
    return sorted(codes)


def quarantine_pending_count() -> int:
    return QuarantinedSale.objects.filter(status=QuarantineStatus.PENDING).count()
