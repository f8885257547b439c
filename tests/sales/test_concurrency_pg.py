"""Races that only a real PostgreSQL shows: concurrent copies of one batch, and two online
sales competing for one customer's balance."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing.models import Customer
from sales.models import Sale, SaleLine
from tests.sales.payloads import BATCHES_URL, ONLINE_URL, batch, cash_sale, sale

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_concurrently(count: int, work):
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def runner(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _client(demo, code):
    key = next(t["key"] for t in demo["terminals"] if t["code"] == code)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_concurrent_copies_of_one_batch_store_each_sale_once(demo):
    body = batch(*[sale() for _ in range(20)], *[cash_sale() for _ in range(20)])

    responses = _run_concurrently(6, lambda i: _client(demo, "N1-CAJA-01").post(BATCHES_URL, body, format="json"))

    assert [r.status_code for r in responses] == [200] * 6
    accepted = sum(r.json()["accepted"] for r in responses)
    duplicates = sum(r.json()["duplicates"] for r in responses)
    assert (accepted, duplicates) == (40, 40 * 5)
    assert sum(r.json()["rejected"] for r in responses) == 0
    assert Sale.objects.count() == 40
    assert SaleLine.objects.count() == 40


def test_two_online_sales_cannot_together_exceed_balance_plus_overdraft(demo):
    # Ana: 12000 + 5000 overdraft = 17000 available; two sales of 10000 each.
    def buy(index):
        body = sale(
            offline=False,
            lines=[{"sku": "SKU-JUGO", "quantity": "5", "unit_price": "2000.00"}],
            payments=[{"method": "paygo", "amount": "10000.00"}],
        )
        return _client(demo, ["N1-CAJA-01", "N1-CAJA-02"][index]).post(ONLINE_URL, body, format="json")

    responses = _run_concurrently(2, buy)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 422], [r.json() for r in responses]
    rejected = next(r for r in responses if r.status_code == 422)
    assert rejected.json()["error"]["code"] == "insufficient_balance"
    assert Customer.objects.get(code="C-000123").balance == Decimal("2000.00")
