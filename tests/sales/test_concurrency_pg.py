"""Races that only a real PostgreSQL shows: concurrent copies of one batch, and two online
sales competing for one customer's balance."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing.models import Customer, InvoiceResolution
from sales.models import Sale, SaleLine
from tests.sales.payloads import BATCHES_URL, ONLINE_URL, batch, cash_sale, sale
from tests.sales.pg_locks import lock_waiters_wait

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


def test_concurrent_online_sales_at_node_level_get_distinct_consecutive_numbers(demo):
    # Given N2's node-level range and eight online sales racing for it
    resolution = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    first = resolution.next_number

    responses = _run_concurrently(
        8,
        lambda i: _client(demo, "N2-CAJA-01").post(
            ONLINE_URL, cash_sale(offline=False, price="3000.00"), format="json"
        ),
    )

    # Then each got its own number, gap-free, and the range moved past all of them
    assert [r.status_code for r in responses] == [201] * 8, [r.json() for r in responses]
    numbers = sorted(r.json()["invoice"]["number"] for r in responses)
    assert numbers == list(range(first, first + 8))
    resolution.refresh_from_db()
    assert resolution.next_number == first + 8


def test_online_numbering_and_deferred_numbering_of_one_range_do_not_deadlock(demo):
    # Online sales at N2 lock customer → balance feed → resolution; reconciling offline
    # N2 sales (run on commit of each batch, eagerly) locks customer → balance feed →
    # resolution too. Mixed, with payGO payments so both take the feed lock, they must all
    # finish, and the node range must hold each number once.
    resolution = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    first = resolution.next_number
    customers = [
        c["code"] for c in demo["customers"] if c["institution"] == "COL-SANJOSE" and not c["blocked_products"]
    ]
    fruit = {"lines": [{"sku": "SKU-FRUTA", "quantity": "1", "unit_price": "1500.00"}]}

    def work(index: int):
        client = _client(demo, "N2-CAJA-01")
        customer = customers[index % len(customers)]
        paygo = {**fruit, "customer": customer, "payments": [{"method": "paygo", "amount": "1500.00"}]}
        if index % 2:
            return client.post(ONLINE_URL, sale(offline=False, known_balance=None, **paygo), format="json")
        return client.post(BATCHES_URL, batch(*[sale(known_balance=None, **paygo) for _ in range(3)]), format="json")

    responses = _run_concurrently(8, work)

    assert all(r.status_code in (200, 201, 422) for r in responses), [r.json() for r in responses]
    numbered = list(Sale.objects.filter(invoice_number__isnull=False).values_list("invoice_number", flat=True))
    assert len(numbered) == len(set(numbered))
    stored = Sale.objects.count()
    assert stored == len(numbered), "every N2 sale ends numbered once its batch is reconciled"
    assert sorted(numbered) == list(range(first, first + stored))


def _move(model: str, code: str, target: str):
    """What staff do in the admin to move an AP to another node (``model="terminal"``) or
    a node to another institution (``"node"``): clean and save in one transaction."""
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from nodes.models import Institution, Node, Terminal

    try:
        with transaction.atomic():
            if model == "terminal":
                row = Terminal.objects.get(code=code)
                row.node = Node.objects.get(code=target)
            else:
                row = Node.objects.get(code=code)
                row.institution = Institution.objects.get(code=target)
            row.full_clean()
            row.save()
        return "moved"
    except ValidationError as exc:
        return exc.message_dict
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("model", "code", "target", "refusal"),
    [
        (
            "terminal",
            "N1-CAJA-02",
            "N2",
            {"node": ["Esta AP ya tiene ventas registradas en otro nodo; no puede cambiarse."]},
        ),
        (
            "node",
            "N2",
            "EMP-ANDINA",
            {"institution": ["Este nodo ya tiene ventas registradas en otra institución; no puede cambiarse."]},
        ),
    ],
)
def test_a_move_while_the_first_batch_is_in_flight_waits_for_it_and_is_refused(
    demo, monkeypatch, model, code, target, refusal
):
    from sales import ingest

    # Given an AP with no sales (on a node with none) whose first batch is inside its transaction
    terminal = "N1-CAJA-02" if model == "terminal" else "N2-CAJA-01"
    assert not Sale.objects.filter(node__terminals__code=terminal).exists()
    in_flight, proceed = threading.Event(), threading.Event()
    context_load = ingest._context_load

    def held(**kwargs):
        in_flight.set()
        proceed.wait(timeout=30)
        return context_load(**kwargs)

    monkeypatch.setattr(ingest, "_context_load", held)
    outcome: dict = {}

    def upload():
        try:
            outcome["upload"] = _client(demo, terminal).post(
                BATCHES_URL, batch(cash_sale(), cash_sale()), format="json"
            )
        finally:
            connection.close()

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert in_flight.wait(timeout=30)

    # When staff move the AP to another node, or its node to another institution, meanwhile
    mover = threading.Thread(target=lambda: outcome.update(move=_move(model, code, target)))
    mover.start()
    waited = lock_waiters_wait(timeout=30)
    proceed.set()
    uploader.join(timeout=60)
    mover.join(timeout=60)

    # Then the move waited for the batch, which is stored whole where it was, and was refused
    assert waited == 1
    assert outcome["upload"].status_code == 200, outcome["upload"].content
    assert outcome["upload"].json()["accepted"] == 2
    assert outcome["move"] == refusal
    stored = Sale.objects.filter(terminal__code=terminal)
    assert set(stored.values_list("node__code", "institution__code")) == {
        (code if model == "node" else "N1", "COL-SANJOSE")
    }


def test_an_ap_moved_after_its_key_was_checked_stores_the_batch_at_its_new_node(demo, monkeypatch):
    from nodes.models import Terminal
    from sales import ingest

    # Given an AP with no sales, moved to N2 after its request was authenticated
    envelope_check = ingest._batch_envelope_check

    def moved_meanwhile(*args):
        mover = threading.Thread(target=lambda: moves.append(_move("terminal", "N1-CAJA-02", "N2")))
        mover.start()
        mover.join(timeout=30)
        return envelope_check(*args)

    moves: list = []
    monkeypatch.setattr(ingest, "_batch_envelope_check", moved_meanwhile)

    # When its batch arrives
    response = _client(demo, "N1-CAJA-02").post(BATCHES_URL, batch(cash_sale(), cash_sale()), format="json")

    # Then it is stored at the node the AP belongs to now
    assert moves == ["moved"]
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert Terminal.objects.get(code="N1-CAJA-02").node.code == "N2"
    assert set(Sale.objects.filter(terminal__code="N1-CAJA-02").values_list("node__code", flat=True)) == {"N2"}
