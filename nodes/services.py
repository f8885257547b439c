"""Writes about terminals made through the API."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from nodes.models import Terminal


def terminal_heartbeat_record(
    *,
    terminal: Terminal,
    online_since: datetime | None = None,
    pending_sales: int | None = None,
    last_seq: int | None = None,
    balances_cursor_age_seconds: int | None = None,
) -> None:
    """Store what the terminal reports about itself, for the sync-status page.

    One UPDATE (no history row: these are telemetry, not base data). Each heartbeat is a
    whole report: a value it leaves out is stored as unknown rather than kept stale.
    Idempotent in effect: the latest heartbeat wins. No locks beyond the row's own.
    """
    Terminal.objects.filter(pk=terminal.pk).update(
        last_seen_at=timezone.now(),
        reported_online_since=online_since,
        reported_pending_sales=pending_sales,
        reported_last_seq=last_seq,
        reported_balances_age_seconds=balances_cursor_age_seconds,
    )
