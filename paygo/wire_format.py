"""How values are written on the wire (docs/pos-sync-api.md): money as a decimal string
with two places, quantities as a plain decimal string, times in Bogotá with an offset."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

BUSINESS_TZ = ZoneInfo("America/Bogota")

# An RFC 3339 date-time with its offset, as the contract asks. ``datetime.fromisoformat``
# alone is laxer: it takes basic ISO 8601 ("20261128T100000-0500") and skips a NUL byte
# before the offset ("2026-11-28T10:00:00\x00-05:00"), so times are matched first.
RFC3339_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def money_str(value: Decimal) -> str:
    """``Decimal("7000")`` → ``"7000.00"`` (formatted from the Decimal, never via float)."""
    return f"{value:.2f}"


def quantity_str(value: Decimal) -> str:
    """``Decimal("40.000")`` → ``"40"``, ``Decimal("0.250")`` → ``"0.25"``: no exponent, no padding."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


def business_time_str(value: datetime | None = None) -> str:
    """An instant (now by default) as RFC 3339 in Bogotá time, e.g. ``2026-11-28T10:00:00-05:00``."""
    return timezone.localtime(value or timezone.now(), BUSINESS_TZ).isoformat(timespec="seconds")
