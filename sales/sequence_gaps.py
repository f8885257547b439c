"""Missing ``seq`` numbers per terminal, recomputed from the stored sales."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db.models import BigIntegerField, Case, F, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Lead

from nodes.models import Terminal
from sales.models import Sale, SequenceGap


def sequence_gaps_recompute(*, terminal_seqs: Mapping[int, Iterable[int]]) -> int:
    """Bring the terminals' :class:`SequenceGap` rows up to date after the sales with
    ``terminal_seqs`` (``{terminal: seqs}``) were stored.

    A gap lies between two consecutive stored ``seq`` numbers of a terminal, so new
    sales can only change the stretch from the highest stored seq below their lowest to
    the lowest stored seq above their highest (two index probes per terminal). Only that
    stretch is windowed (``LEAD(seq) OVER (PARTITION BY terminal ORDER BY seq)``) and
    only its gaps are replaced: the cost follows the sales reconciled, not the
    terminal's history (a register's year of sales would otherwise be read every chunk).

    Set-based: one query for the stretches, one window query, one upsert (a gap keeps its
    ``detected_at`` while it is the same gap), one delete of filled gaps. Idempotent.
    Locks: none of its own; the caller holds the terminals' node lock. Returns the number
    of gaps now recorded in the stretches.
    """
    bounds = {}
    for terminal_id, seqs in terminal_seqs.items():
        seqs = list(seqs)
        if seqs:
            bounds[terminal_id] = (min(seqs), max(seqs))
    if not bounds:
        return 0

    def bound(index: int) -> Case:
        return Case(
            *[When(pk=terminal_id, then=Value(pair[index])) for terminal_id, pair in bounds.items()],
            output_field=BigIntegerField(),
        )

    below = Sale.objects.filter(terminal_id=OuterRef("pk"), seq__lt=OuterRef("low")).order_by("-seq").values("seq")
    above = Sale.objects.filter(terminal_id=OuterRef("pk"), seq__gt=OuterRef("high")).order_by("seq").values("seq")
    stretches = {
        terminal_id: (first if first is not None else low, last if last is not None else high)
        for terminal_id, low, high, first, last in Terminal.objects.filter(pk__in=bounds)
        .order_by()
        .annotate(low=bound(0), high=bound(1))
        .annotate(first=Subquery(below[:1]), last=Subquery(above[:1]))
        .values_list("pk", "low", "high", "first", "last")
    }
    if not stretches:
        return 0

    inside = Q()
    for terminal_id, (first, last) in stretches.items():
        inside |= Q(terminal_id=terminal_id, seq__gte=first, seq__lte=last)
    gaps = (
        Sale.objects.filter(inside)
        .order_by()
        .annotate(next_seq=Window(Lead("seq"), partition_by=[F("terminal_id")], order_by=F("seq").asc()))
        .filter(next_seq__gt=F("seq") + 1)
        .values_list("terminal_id", "seq", "next_seq")
    )
    rows = [SequenceGap(terminal_id=t, first_missing=seq + 1, last_missing=nxt - 1) for t, seq, nxt in gaps]
    if rows:
        SequenceGap.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["terminal", "first_missing"], update_fields=["last_missing"]
        )
    keep: dict[int, list[int]] = {terminal_id: [] for terminal_id in stretches}
    for row in rows:
        keep[row.terminal_id].append(row.first_missing)
    filled = Q()
    for terminal_id, (first, last) in stretches.items():
        filled |= Q(terminal_id=terminal_id, first_missing__gt=first, first_missing__lte=last) & ~Q(
            first_missing__in=keep[terminal_id]
        )
    SequenceGap.objects.filter(filled).delete()
    return len(rows)
