"""Shared fixtures. Data is set up through the real services (the demo builder, the
ledgers), never by writing materialized values by hand."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from django.db import connection

from paygo.demo import demo_seed

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason: str) -> None:
    """Skip locally; fail in CI, where every service must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required services must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _service_markers(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("needs PostgreSQL: set DATABASE_URL (make test starts one)")
    if request.node.get_closest_marker("redis") and not os.environ.get("PAYGO_TEST_REDIS_URL"):
        _missing("needs redis-server: set PAYGO_TEST_REDIS_URL (make test starts one)")


@pytest.fixture(autouse=True)
def _rate_limit_counters_reset():
    """Throttle counters live in the cache and every test client shares one address:
    start each test with none, so one test's refused keys never throttle another."""
    cache.clear()


@pytest.fixture
def demo(db):
    """The deterministic demo (contract's seed_demo output as a dict)."""
    return demo_seed(customers_per_institution=5)


@pytest.fixture
def admin_user(demo, django_user_model):
    return django_user_model.objects.get(username=demo["admin"]["username"])


@pytest.fixture
def finance_user(demo, django_user_model):
    return django_user_model.objects.get(username=demo["finance"]["username"])


@pytest.fixture
def data_staff_user(demo, django_user_model):
    return django_user_model.objects.get(username=demo["data_staff"]["username"])


@pytest.fixture
def pos_client(demo):
    """Factory: ``pos_client("N1-CAJA-01")`` is an APIClient authenticated as that terminal."""
    from rest_framework.test import APIClient

    keys = {terminal["code"]: terminal["key"] for terminal in demo["terminals"]}

    def make(code: str = "N1-CAJA-01") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[code]}")
        return client

    return make
