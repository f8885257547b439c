"""Missing ``seq`` numbers per terminal, recomputed from the stored sales."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Q, Window
from django.db.models.functions import Lead

from sales.models import Sale, SequenceGap


def sequence_gaps_recompute(*, terminal_ids: Iterable[int]) -> int:
    """Replace the terminals' :class:`SequenceGap` rows with the gaps between their
    stored ``seq`` numbers (``LEAD(seq) OVER (PARTITION BY terminal ORDER BY seq)``).

    Set-based: one window query, one upsert (a gap keeps its ``detected_at`` while it is
    the same gap), one delete of filled gaps. Idempotent. Locks: none of its own; the
    caller holds the terminals' node lock. Returns the number of gaps now recorded.
    """
    ids = sorted(set(terminal_ids))
    if not ids:
        return 0
    gaps = (
        Sale.objects.filter(terminal_id__in=ids)
        .annotate(next_seq=Window(Lead("seq"), partition_by=[F("terminal_id")], order_by=F("seq").asc()))
        .filter(next_seq__gt=F("seq") + 1)
        .values_list("terminal_id", "seq", "next_seq")
    )
    rows = [SequenceGap(terminal_id=t, first_missing=seq + 1, last_missing=nxt - 1) for t, seq, nxt in gaps]
    if rows:
        SequenceGap.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["terminal", "first_missing"], update_fields=["last_missing"]
        )
    keep: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        keep[row.terminal_id].append(row.first_missing)
    filled = Q()
    for terminal_id in ids:
        filled |= Q(terminal_id=terminal_id) & ~Q(first_missing__in=keep[terminal_id])
    SequenceGap.objects.filter(filled).delete()
    return len(rows)
