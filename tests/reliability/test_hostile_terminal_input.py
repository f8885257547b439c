"""Hostile bodies and paths on the heartbeat and the kitchen status change: always a 4xx in
the contract's error shape, never a 500, and nothing stored. (The sales endpoints have their
own in ``tests/sales/test_hostile_input.py``.)"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from nodes.models import Terminal
from sales.models import Comanda, ComandaStatus
from sales.reconcile import sales_reconcile
from tests.sales.payloads import BATCHES_URL, assert_error_shape, batch, cash_sale

pytestmark = pytest.mark.django_db

HEARTBEAT = "/api/v1/pos/heartbeat"


def client_for(demo, code: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + next(t["key"] for t in demo["terminals"] if t["code"] == code))
    return client


def post_raw(client: APIClient, path: str, body):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, raw, content_type="application/json")


def assert_refused(response, *statuses: int) -> dict:
    assert response.status_code in (statuses or range(400, 500)), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    return assert_error_shape(response)


HOSTILE_HEARTBEATS = [
    {"pending_sales": "doce"},
    {"pending_sales": True},
    {"pending_sales": [1]},
    {"pending_sales": {"$gt": 0}},
    {"pending_sales": 1e308},
    {"pending_sales": 10**400},
    {"pending_sales": "9" * 5000},
    {"pending_sales": "1\u0000"},
    {"last_seq": -(2**63) - 1},
    {"last_seq": 2**63},
    {"balances_cursor_age_seconds": 2**31},
    {"online_since": 1732800000},
    {"online_since": ["2026-11-28T10:00:00-05:00"]},
    {"online_since": "2026-11-28T10:00:00\u0000-05:00"},  # fromisoformat alone skips the NUL
    {"online_since": "20261128T100000-0500"},  # basic ISO 8601, not RFC 3339
    {"online_since": "\u0000"},
    {"online_since": "0001-01-01T00:00:00+14:00"},  # before year 1 once in UTC
    {"online_since": "9999-12-31T23:59:59-14:00"},  # after year 9999 once in UTC
    {"online_since": "2026-13-45T25:61:61-05:00"},
    {"online_since": "2026-11-28T10:00:00+99:00"},
    {"online_since": "x" * 100_000},
    '{"pending_sales": NaN}',
    '{"pending_sales": Infinity}',
    '{"pending_sales": 1, "pending_sales": "dos"}',
    b'{"pending_sales": "\xff\xfe"}',
    "[" * 5000 + "]" * 5000,
    "null",
    '"texto"',
    "12",
]


@pytest.mark.parametrize("body", HOSTILE_HEARTBEATS, ids=range(len(HOSTILE_HEARTBEATS)))
def test_hostile_heartbeats_are_4xx_in_the_error_shape_and_store_nothing(demo, body):
    response = post_raw(client_for(demo, "N1-CAJA-01"), HEARTBEAT, body)

    assert_refused(response)
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    assert terminal.last_seen_at is None
    assert (terminal.reported_pending_sales, terminal.reported_online_since) == (None, None)


@pytest.fixture
def comanda(demo) -> Comanda:
    body = cash_sale(sku="SKU-AREPA", price="3200.00")
    assert client_for(demo, "N1-CAJA-01").post(BATCHES_URL, batch(body), format="json").json()["accepted"] == 1
    sales_reconcile()
    return Comanda.objects.get(sale_id=body["id"])


HOSTILE_STATUSES = [
    {},
    {"status": None},
    {"status": ""},
    {"status": "READY"},
    {"status": "ready\u0000"},
    {"status": "\u0000"},
    {"status": "cancelled"},
    {"status": "ready; DROP TABLE sales_comanda"},
    {"status": 2},
    {"status": True},
    {"status": ["ready"]},
    {"status": {"value": "ready"}},
    {"status": "x" * 100_000},
    '{"status": NaN}',
    b'{"status": "\xc3\x28"}',
    '["ready"]',
    "null",
    "{",
]


@pytest.mark.parametrize("body", HOSTILE_STATUSES, ids=range(len(HOSTILE_STATUSES)))
def test_hostile_status_bodies_are_4xx_and_leave_the_comanda_alone(demo, comanda, body):
    response = post_raw(client_for(demo, "N1-COCINA-01"), f"/api/v1/kitchen/comandas/{comanda.pk}/status", body)

    assert_refused(response, 400)
    comanda.refresh_from_db()
    assert comanda.status == ComandaStatus.PENDING


@pytest.mark.parametrize(
    "comanda_id",
    ["0", "-1", "99999999999999999999999999", str(2**63), str(2**63 - 1), "1.5", "%00", "1%00", "abc", "1e3"],
)
def test_hostile_comanda_ids_are_404_in_the_error_shape(demo, comanda, comanda_id):
    response = client_for(demo, "N1-COCINA-01").post(
        f"/api/v1/kitchen/comandas/{comanda_id}/status", {"status": "ready"}, format="json"
    )

    assert_refused(response, 404)
    comanda.refresh_from_db()
    assert comanda.status == ComandaStatus.PENDING


@pytest.mark.parametrize(
    ("reached", "wanted"),
    [
        ("in_progress", "pending"),
        ("ready", "pending"),
        ("ready", "in_progress"),
        ("delivered", "pending"),
        ("delivered", "in_progress"),
        ("delivered", "ready"),
    ],
)
def test_illegal_transitions_are_409_in_the_error_shape(demo, comanda, reached, wanted):
    client = client_for(demo, "N1-COCINA-01")
    url = f"/api/v1/kitchen/comandas/{comanda.pk}/status"
    assert client.post(url, {"status": reached}, format="json").status_code == 200

    response = client.post(url, {"status": wanted}, format="json")

    error = assert_refused(response, 409)
    assert error["code"] == "comanda_status_backwards"
    assert error["details"] == {"current": reached, "requested": wanted}
    comanda.refresh_from_db()
    assert comanda.status == reached
