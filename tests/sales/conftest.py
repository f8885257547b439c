from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.sales.stored_sales import BOGOTA


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the local-memory cache across tests; start each test clean.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def base_time() -> datetime:
    """Five past midnight of today in Bogotá: after the demo's opening stock and balances
    (a day ago) and leaves the whole Bogotá day for sales."""
    now = timezone.now().astimezone(BOGOTA)
    return now.replace(hour=0, minute=5, second=0, microsecond=0)


@pytest.fixture
def at(base_time):
    """``at(minutes)``: a time ``minutes`` after :func:`base_time`."""
    return lambda minutes: base_time + timedelta(minutes=minutes)
