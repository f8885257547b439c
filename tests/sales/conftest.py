import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the local-memory cache across tests; start each test clean.
    cache.clear()
    yield
    cache.clear()
