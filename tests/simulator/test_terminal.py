"""One terminal against the in-memory back office: online sales, offline queue, upload."""

import random
import re
import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from simulator.client import Chaos, PosClient, RetryPolicy
from simulator.terminal import MAX_BATCH, Outage, Terminal, batches_plan
from simulator.wire import BOGOTA, Sale
from tests.simulator.backoffice_double import BackOfficeDouble, lost_reply_once, with_lost_replies

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _terminal(double, code, clock, *, outage=None, chaos=False, transport=None, seed=7, batch_size=MAX_BATCH):
    spec = next(t for t in double.demo["terminals"] if t["code"] == code)
    client = PosClient(
        base_url="http://backoffice.test",
        key=spec["key"],
        transport=transport or double.transport(),
        retry=RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.02),
        chaos=Chaos(timeout_rate=0.0, resend_rate=0.5) if chaos else None,
        rng=random.Random(seed),
        sleep=clock.sleep,
    )
    return Terminal(
        code=code,
        kind=spec["kind"],
        node=spec["node"],
        client=client,
        rng=random.Random(seed),
        outage=outage,
        clock=clock,
        speed=1.0,
        chaos_rng=random.Random(seed + 1) if chaos else None,
        batch_size=batch_size,
    )


def _offline_from_now(clock, *codes):
    return Outage(clock.t + 1, clock.t + 10_000, frozenset(codes))


def _go_offline(terminal, clock):
    terminal.boot()
    clock.sleep(2)
    assert not terminal.is_online()


def test_seq_and_uuid_per_sale_and_time_with_offset(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    terminal = _terminal(double, "N1-CAJA-01", fake_clock)
    terminal.boot()
    for _ in range(15):
        fake_clock.sleep(30)
        terminal.sell_one()
    made = [r.sale for r in terminal.records.values() if r.outcome != "refused"]
    assert [s.seq for s in made] == list(range(1, len(made) + 1))  # +1 per sale, no gaps
    assert len({s.id for s in terminal.records.values() for s in [s.sale]}) == len(terminal.records)
    for sale in made:
        assert uuid.UUID(sale.id).version == 4
        assert RFC3339.match(sale.to_wire()["occurred_at"])
        assert sale.to_wire()["occurred_at"].endswith("-05:00")
    assert terminal.stats.attempts == 15


def test_kiosk_sells_nothing_offline(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    kiosk = _terminal(double, "N1-KIOSCO-01", fake_clock, outage=_offline_from_now(fake_clock, "N1-KIOSCO-01"))
    _go_offline(kiosk, fake_clock)
    for _ in range(10):
        kiosk.sell_one()
    assert kiosk.stats.not_sold == Counter(self_service_offline=10)
    assert kiosk.queue == []
    assert kiosk.seq == 0


def test_offline_at_a_node_with_both_flags_on(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    terminal = _terminal(double, "N1-CAJA-01", fake_clock, outage=_offline_from_now(fake_clock, "N1-CAJA-01"))
    _go_offline(terminal, fake_clock)
    before = {code: view.available for code, view in terminal.book.customers.items()}
    first_number = terminal.numbering.next_number
    requests_before = len(double.requests)
    for _ in range(40):
        terminal.sell_one()
    assert len(double.requests) == requests_before  # nothing leaves the register
    sales = terminal.queue
    assert len(sales) == terminal.stats.offline == 40
    assert all(s.offline for s in sales)
    assert [s.invoice.number for s in sales] == list(range(first_number, first_number + 40))
    assert all(p.method != "units" for s in sales for p in s.payments)
    paygo = Counter()
    for sale in sales:
        paygo[sale.customer] += sale.paygo_amount
    assert paygo  # customers paid with payGO against the last balance
    for code, spent in paygo.items():
        if code:
            assert terminal.book.get(code).available == before[code] - spent
            assert terminal.book.get(code).available >= 0  # never beyond what it knew


def test_offline_at_a_node_with_both_flags_off(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    terminal = _terminal(double, "N2-CAJA-01", fake_clock, outage=_offline_from_now(fake_clock, "N2-CAJA-01"))
    _go_offline(terminal, fake_clock)
    tracked = {p.sku for p in terminal.products if p.tracks_inventory}
    for _ in range(40):
        terminal.sell_one()
    assert terminal.queue
    for sale in terminal.queue:
        assert sale.invoice is None  # node-level numbering: deferred
        assert sale.customer is None
        assert {p.method for p in sale.payments} <= {"cash", "card"}
        assert not {line.sku for line in sale.lines} & tracked


def test_reconnect_uploads_in_batches_then_refreshes_every_balance(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    outage = Outage(fake_clock.t + 1, fake_clock.t + 100, frozenset({"N1-CAJA-01"}))
    terminal = _terminal(double, "N1-CAJA-01", fake_clock, outage=outage, batch_size=7)
    _go_offline(terminal, fake_clock)
    for _ in range(20):
        terminal.sell_one()
    fake_clock.sleep(200)
    terminal.tick()
    posts = [p for m, p in double.requests if p.endswith("/batches")]
    assert len(posts) == 3  # 20 sales in batches of at most 7
    assert terminal.queue == []
    assert terminal.stats.accepted == 20
    assert all(r.outcome == "stored" for r in terminal.records.values())
    last_batch = max(i for i, (_, path) in enumerate(double.requests) if path.endswith("/batches"))
    assert ("GET", "/api/v1/pos/balances") in double.requests[last_batch:]
    assert terminal.stats.balance_pulls["full"] == 2
    # the refreshed view is the server's
    assert terminal.book.balances() == {
        a.code: a.balance for a in double.accounts.values() if a.institution == "COL-SANJOSE"
    }


def test_lost_replies_are_retried_and_answered_as_duplicates(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    double.faults.append(lost_reply_once("/api/v1/pos/sales/batches", every=1))
    outage = Outage(fake_clock.t + 1, fake_clock.t + 100, frozenset({"N1-CAJA-01"}))
    terminal = _terminal(
        double, "N1-CAJA-01", fake_clock, outage=outage, transport=with_lost_replies(double), batch_size=5
    )
    _go_offline(terminal, fake_clock)
    for _ in range(12):
        terminal.sell_one()
    fake_clock.sleep(200)
    terminal.tick()
    assert terminal.client.stats.failures["timeout"] == 3
    assert terminal.stats.duplicates == 12  # every batch was stored by its first, unanswered send
    assert terminal.stats.accepted == 0
    assert all(r.stored and r.accepted_answers <= 1 for r in terminal.records.values())
    assert len(double.sales) == 12


def test_chaos_resends_batches_and_counts_duplicates(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    outage = Outage(fake_clock.t + 1, fake_clock.t + 100, frozenset({"N1-CAJA-01"}))
    terminal = _terminal(double, "N1-CAJA-01", fake_clock, outage=outage, chaos=True)
    _go_offline(terminal, fake_clock)
    for _ in range(30):
        terminal.sell_one()
    fake_clock.sleep(200)
    terminal.tick()
    assert terminal.stats.resent_batches > 0
    assert terminal.stats.accepted == 30
    assert terminal.stats.duplicates == terminal.stats.uploaded - 30 > 0
    assert len(double.sales) == 30


def test_a_sale_refused_online_is_counted_not_retried_and_frees_its_seq(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    double.accounts["C-000200"].balance = Decimal("-5000")  # no room left at all
    for account in double.accounts.values():
        if account.code != "C-000200":
            account.institution = "ELSEWHERE"  # only the broke customer comes to buy
    terminal = _terminal(double, "N1-CAJA-01", fake_clock, seed=3)
    terminal.boot()
    for _ in range(20):
        fake_clock.sleep(30)
        terminal.sell_one()
    refused = [r for r in terminal.records.values() if r.outcome == "refused"]
    assert refused
    assert terminal.stats.refused_online == Counter(code for r in refused for code in r.codes)
    assert terminal.stats.refused_online["insufficient_balance"] > 0
    sale_posts = [p for m, p in double.requests if p == "/api/v1/pos/sales"]
    assert len(sale_posts) == len(terminal.records)  # one post each: a 422 is never re-sent
    stored = [r.sale for r in terminal.records.values() if r.stored]
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1))


def test_batch_5xx_is_retried(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    failures = {"left": 2}

    def server_error(request, number):
        if request.url.path.endswith("/batches") and failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503, json={"error": {"code": "service_unavailable", "message": "x", "details": {}}})
        return None

    double.faults.append(server_error)
    outage = Outage(fake_clock.t + 1, fake_clock.t + 100, frozenset({"N1-CAJA-01"}))
    terminal = _terminal(double, "N1-CAJA-01", fake_clock, outage=outage)
    _go_offline(terminal, fake_clock)
    for _ in range(5):
        terminal.sell_one()
    fake_clock.sleep(200)
    terminal.tick()
    assert terminal.client.stats.retries == 2
    assert terminal.stats.accepted == 5


def _sales(n):
    at = datetime(2026, 11, 28, 12, tzinfo=BOGOTA)
    return [Sale(str(uuid.uuid4()), seq, at, True, None, (), ()) for seq in range(1, n + 1)]


@pytest.mark.parametrize(("count", "sizes"), [(0, []), (500, [500]), (501, [500, 1]), (1234, [500, 500, 234])])
def test_batches_hold_at_most_500_in_seq_order(count, sizes):
    sales = _sales(count)
    batches = batches_plan(list(reversed(sales)))
    assert [len(b) for b in batches] == sizes
    assert [s.seq for b in batches for s in b] == list(range(1, count + 1))
    assert [len(b) for b in batches_plan(sales, batch_size=9999)] == sizes  # never more than the contract allows


def test_chaos_batches_are_shuffled_split_and_complete():
    sales = _sales(1200)
    batches = batches_plan(sales, rng=random.Random(5))
    assert all(1 <= len(b) <= 500 for b in batches)
    flat = [s.seq for b in batches for s in b]
    assert sorted(flat) == list(range(1, 1201))
    assert flat != sorted(flat)
