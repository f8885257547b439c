"""Invoice numbering: the resolution that numbers a terminal, online numbers taken
gap-free under the row lock, deferred offline numbering in time-of-sale order, advancing
terminal-level ranges, warnings and validation.

The demo gives N1's registers terminal-level resolutions, N2 a node-level one and
EMP-ANDINA (N3) an institution-level one. Sales are written directly here because the
ingest service lives on another branch.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.invoicing import (
    InvoiceError,
    invoice_number_take,
    invoice_resolution_advance,
    invoice_resolution_for,
    invoices_deferred_assign,
    invoicing_warnings_for_terminal,
    resolution_save,
    resolution_validate,
    resolution_warnings,
    resolutions_with_warnings_q,
)
from billing.models import InvoiceResolution
from inventory.models import Product
from nodes.models import Node, NumberingLevel, Terminal
from sales.models import FlagCode, InvoiceSource, Payment, Sale, SaleFlag, SaleLine

BOGOTA = timezone.get_default_timezone()


def sale_record(
    terminal: Terminal,
    *,
    occurred_at: datetime,
    seq: int,
    offline: bool = True,
    price: Decimal = Decimal("3500.00"),
) -> Sale:
    """A stored sale of one product paid in cash, as ingest would leave it (no invoice yet)."""
    node = terminal.node
    product = Product.objects.filter(institution_id=node.institution_id).order_by("pk").first()
    sale = Sale.objects.create(
        institution_id=node.institution_id,
        node=node,
        terminal=terminal,
        seq=seq,
        occurred_at=occurred_at,
        received_at=timezone.now(),
        business_date=timezone.localdate(occurred_at),
        offline=offline,
        total=price,
        payload_hash=uuid.uuid4().hex,
    )
    SaleLine.objects.create(
        sale=sale, position=0, product=product, quantity=Decimal("1"), unit_price=price, total=price
    )
    Payment.objects.create(sale=sale, position=0, method="cash", amount=price)
    return sale


def at(hour: int, minute: int = 0, day: date | None = None) -> datetime:
    day = day or timezone.localdate()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BOGOTA)


def resolution_of(node_code: str) -> InvoiceResolution:
    node = Node.objects.get(code=node_code)
    if node.invoice_numbering_level == NumberingLevel.NODE:
        return InvoiceResolution.objects.get(level="node", node=node)
    return InvoiceResolution.objects.get(level="institution", institution=node.institution)


def successor_of(resolution: InvoiceResolution, *, size: int = 10, saved: bool = True, **changes) -> InvoiceResolution:
    """A second resolution for the same owner, after the demo's ranges (``saved=False``:
    not saved, as staff would be about to add it)."""
    start = 900_001
    fields = {
        "institution_id": resolution.institution_id,
        "level": resolution.level,
        "node_id": resolution.node_id,
        "terminal_id": resolution.terminal_id,
        "number": "18764009999",
        "resolution_date": resolution.resolution_date,
        "prefix": resolution.prefix,
        "range_from": start,
        "range_to": start + size - 1,
        "valid_from": resolution.valid_from,
        "valid_until": resolution.valid_until,
        "next_number": start,
        **changes,
    }
    return InvoiceResolution.objects.create(**fields) if saved else InvoiceResolution(**fields)


class SaleFailedError(Exception):
    pass


def _take_then_fail(*, terminal: Terminal, on: date) -> None:
    """A sale transaction that takes a number and then fails (e.g. a rule broke)."""
    with transaction.atomic():
        invoice_number_take(terminal=terminal, on=on)
        raise SaleFailedError


@pytest.fixture
def today(demo):
    return timezone.localdate()


# --- which resolution ------------------------------------------------------------------


def test_the_resolution_follows_the_nodes_numbering_level(today):
    caja_n1 = Terminal.objects.get(code="N1-CAJA-01")
    caja_n2 = Terminal.objects.get(code="N2-CAJA-01")
    casino_1, casino_2 = Terminal.objects.get(code="N3-CAJA-01"), Terminal.objects.get(code="N3-CAJA-02")

    assert invoice_resolution_for(terminal=caja_n1, on=today).terminal == caja_n1
    assert invoice_resolution_for(terminal=caja_n2, on=today) == resolution_of("N2")
    shared = invoice_resolution_for(terminal=casino_1, on=today)
    assert shared.level == NumberingLevel.INSTITUTION
    assert invoice_resolution_for(terminal=casino_2, on=today) == shared


def test_no_resolution_outside_validity_or_when_exhausted(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    assert invoice_resolution_for(terminal=caja, on=resolution.valid_until + timedelta(days=1)) is None
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=F("range_to") + 1)
    assert invoice_resolution_for(terminal=caja, on=today) is None


# --- online numbers --------------------------------------------------------------------


def test_online_numbers_are_consecutive_and_gap_free(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    start = resolution.next_number

    taken = [invoice_number_take(terminal=caja, on=today)[1] for _ in range(3)]
    used, block = invoice_number_take(terminal=caja, on=today, count=3)

    assert taken == [[start], [start + 1], [start + 2]]
    assert block == [start + 3, start + 4, start + 5]
    assert used == resolution
    resolution.refresh_from_db()
    assert resolution.next_number == start + 6


def test_the_institution_range_is_shared_by_the_nodes_registers(today):
    casino_1, casino_2 = Terminal.objects.get(code="N3-CAJA-01"), Terminal.objects.get(code="N3-CAJA-02")
    start = resolution_of("N3").next_number
    assert invoice_number_take(terminal=casino_1, on=today)[1] == [start]
    assert invoice_number_take(terminal=casino_2, on=today)[1] == [start + 1]


def test_numbers_taken_in_a_rolled_back_transaction_go_back_to_the_pool(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    start = resolution_of("N2").next_number
    with pytest.raises(SaleFailedError):
        _take_then_fail(terminal=caja, on=today)
    assert invoice_number_take(terminal=caja, on=today)[1] == [start]


def test_exhausted_range_is_refused_with_invoice_range_exhausted(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=F("range_to"))

    assert invoice_number_take(terminal=caja, on=today)[1] == [resolution.range_to]
    with pytest.raises(InvoiceError) as excinfo:
        invoice_number_take(terminal=caja, on=today)
    assert excinfo.value.code == "invoice_range_exhausted"
    assert excinfo.value.status_code == 422
    resolution.refresh_from_db()
    assert resolution.next_number == resolution.range_to + 1


def test_a_block_larger_than_what_is_left_is_refused_and_takes_nothing(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=F("range_to") - 1)
    with pytest.raises(InvoiceError) as excinfo:
        invoice_number_take(terminal=caja, on=today, count=3)
    assert excinfo.value.code == "invoice_range_exhausted"
    assert excinfo.value.details["left"] == 2
    assert invoice_number_take(terminal=caja, on=today, count=2)[1] == [resolution.range_to - 1, resolution.range_to]


def test_expired_resolution_is_refused_with_invoice_resolution_expired(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    start = resolution.next_number
    with pytest.raises(InvoiceError) as excinfo:
        invoice_number_take(terminal=caja, on=resolution.valid_until + timedelta(days=1))
    assert excinfo.value.code == "invoice_resolution_expired"
    resolution.refresh_from_db()
    assert resolution.next_number == start


def test_missing_resolution_is_refused_with_invoice_resolution_missing(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    InvoiceResolution.objects.filter(pk=resolution_of("N2").pk).update(active=False)
    with pytest.raises(InvoiceError) as excinfo:
        invoice_number_take(terminal=caja, on=today)
    assert excinfo.value.code == "invoice_resolution_missing"


def test_a_new_resolution_takes_over_when_the_old_one_is_exhausted(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    old = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=old.pk).update(next_number=F("range_to"))
    new = successor_of(old)

    first, last_of_old = invoice_number_take(terminal=caja, on=today)
    second, first_of_new = invoice_number_take(terminal=caja, on=today)

    assert (first, last_of_old) == (old, [old.range_to])
    assert (second, first_of_new) == (new, [new.range_from])
    assert invoice_resolution_for(terminal=caja, on=today) == new


def test_terminal_level_registers_are_not_numbered_by_the_server(today):
    with pytest.raises(ValueError, match="terminal-level"):
        invoice_number_take(terminal=Terminal.objects.get(code="N1-CAJA-01"), on=today)


# --- terminal-level advance ------------------------------------------------------------


def test_advance_moves_forward_only_and_stops_at_the_end_of_the_range(today):
    resolution = InvoiceResolution.objects.get(terminal__code="N1-CAJA-01")
    start = resolution.range_from

    assert invoice_resolution_advance(resolution_id=resolution.pk, highest_used=start + 41) == 1
    resolution.refresh_from_db()
    assert resolution.next_number == start + 42

    invoice_resolution_advance(resolution_id=resolution.pk, highest_used=start + 10)  # a late, older batch
    resolution.refresh_from_db()
    assert resolution.next_number == start + 42

    invoice_resolution_advance(resolution_id=resolution.pk, highest_used=resolution.range_to + 50)
    resolution.refresh_from_db()
    assert resolution.next_number == resolution.range_to + 1


# --- deferred numbering ----------------------------------------------------------------


def _numbers(sales: list[Sale]) -> list[int | None]:
    by_id = dict(Sale.objects.filter(pk__in=[s.pk for s in sales]).values_list("pk", "invoice_number"))
    return [by_id[s.pk] for s in sales]


def test_deferred_numbers_follow_time_of_sale_not_arrival(today):
    casino_1, casino_2 = Terminal.objects.get(code="N3-CAJA-01"), Terminal.objects.get(code="N3-CAJA-02")
    if casino_2.pk < casino_1.pk:
        casino_1, casino_2 = casino_2, casino_1
    resolution = resolution_of("N3")
    start = resolution.next_number
    # In time order: 09:00 (caja 1), 10:00 caja 1 then caja 2 (same instant: terminal order), 11:00 seq 7 then 8.
    expected = [
        (casino_1, at(9), 1),
        (casino_1, at(10), 2),
        (casino_2, at(10), 1),
        (casino_2, at(11), 7),
        (casino_2, at(11), 8),
    ]
    arrival = [expected[i] for i in (4, 2, 0, 3, 1)]  # a register that came back late uploads in its own order
    created = {(t.pk, seq): sale_record(t, occurred_at=when, seq=seq) for t, when, seq in arrival}
    in_time_order = [created[(t.pk, seq)] for t, _, seq in expected]

    assert invoices_deferred_assign(sale_ids=[s.pk for s in created.values()]) == 5

    assert _numbers(in_time_order) == list(range(start, start + 5))
    stored = Sale.objects.filter(pk__in=[s.pk for s in in_time_order])
    assert {s.invoice_source for s in stored} == {InvoiceSource.SERVER}
    assert {s.invoice_prefix for s in stored} == {resolution.prefix}
    assert {s.invoice_resolution_id for s in stored} == {resolution.pk}
    assert SaleFlag.objects.filter(sale__in=stored, code=FlagCode.INVOICE_DEFERRED).count() == 5
    resolution.refresh_from_db()
    assert resolution.next_number == start + 5


def test_deferred_numbering_is_idempotent(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    sales = [sale_record(caja, occurred_at=at(8, m), seq=m + 1) for m in range(4)]
    ids = [s.pk for s in sales]
    assert invoices_deferred_assign(sale_ids=ids) == 4
    before = list(Sale.objects.filter(pk__in=ids).values_list("pk", "invoice_number").order_by("pk"))
    next_number = resolution_of("N2").next_number

    assert invoices_deferred_assign(sale_ids=ids + ids) == 0

    assert list(Sale.objects.filter(pk__in=ids).values_list("pk", "invoice_number").order_by("pk")) == before
    assert resolution_of("N2").next_number == next_number
    assert SaleFlag.objects.filter(sale_id__in=ids, code=FlagCode.INVOICE_DEFERRED).count() == 4


def test_deferred_numbering_skips_online_terminal_level_and_numbered_sales(today):
    n1 = sale_record(Terminal.objects.get(code="N1-CAJA-01"), occurred_at=at(8), seq=1)
    online = sale_record(Terminal.objects.get(code="N2-CAJA-01"), occurred_at=at(8), seq=1, offline=False)
    deferred = sale_record(Terminal.objects.get(code="N2-CAJA-01"), occurred_at=at(9), seq=2)

    assert invoices_deferred_assign(sale_ids=[n1.pk, online.pk, deferred.pk, uuid.uuid4()]) == 1

    assert _numbers([n1, online, deferred]) == [None, None, resolution_of("N2").range_from]


def test_deferred_numbering_stops_when_the_range_runs_out_and_resumes_later(today, caplog):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=F("range_to") - 1)
    sales = [sale_record(caja, occurred_at=at(12, 50 - 10 * i), seq=10 - i) for i in range(5)]
    in_time_order = sorted(sales, key=lambda s: s.occurred_at)

    with caplog.at_level(logging.WARNING, logger="billing.invoicing"):
        assert invoices_deferred_assign(sale_ids=[s.pk for s in sales]) == 2
    assert "left unnumbered" in caplog.text
    assert _numbers(in_time_order) == [resolution.range_to - 1, resolution.range_to, None, None, None]

    new = successor_of(resolution)
    assert invoices_deferred_assign(sale_ids=[s.pk for s in sales]) == 3
    assert _numbers(in_time_order)[2:] == [new.range_from, new.range_from + 1, new.range_from + 2]


def test_deferred_numbering_uses_the_resolution_valid_on_the_day_of_the_sale(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    old = resolution_of("N2")
    # The old resolution ended yesterday; a new one is valid from today.
    InvoiceResolution.objects.filter(pk=old.pk).update(valid_until=today - timedelta(days=1))
    new = successor_of(old, valid_from=today)
    yesterday = sale_record(caja, occurred_at=at(15, day=today - timedelta(days=1)), seq=1)
    this_morning = sale_record(caja, occurred_at=at(7), seq=2)

    assert invoices_deferred_assign(sale_ids=[this_morning.pk, yesterday.pk]) == 2

    yesterday.refresh_from_db()
    this_morning.refresh_from_db()
    assert (yesterday.invoice_resolution_id, yesterday.invoice_number) == (old.pk, old.range_from)
    assert (this_morning.invoice_resolution_id, this_morning.invoice_number) == (new.pk, new.range_from)


def test_deferred_numbering_costs_the_same_queries_for_10_or_40_sales(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    few = [sale_record(caja, occurred_at=at(8, i), seq=i + 1) for i in range(10)]
    many = [sale_record(caja, occurred_at=at(9, i), seq=100 + i) for i in range(40)]
    with CaptureQueriesContext(connection) as small:
        invoices_deferred_assign(sale_ids=[s.pk for s in few])
    with CaptureQueriesContext(connection) as large:
        invoices_deferred_assign(sale_ids=[s.pk for s in many])
    assert len(small.captured_queries) == len(large.captured_queries) <= 10


# --- warnings --------------------------------------------------------------------------


def _resolution(**changes) -> InvoiceResolution:
    fields = {
        "number": "1",
        "range_from": 1,
        "range_to": 100,
        "next_number": 1,
        "valid_from": date(2026, 1, 1),
        "valid_until": date(2027, 6, 30),
        "active": True,
        **changes,
    }
    return InvoiceResolution(**fields)


def test_warning_at_90_percent_of_the_range_used():
    today = date(2026, 11, 28)
    assert resolution_warnings(resolution=_resolution(next_number=90), today=today) == []  # 89 used
    (warning,) = resolution_warnings(resolution=_resolution(next_number=91), today=today)
    assert "90 %" in warning
    assert "quedan 10 consecutivos" in warning
    (warning,) = resolution_warnings(resolution=_resolution(next_number=101), today=today)
    assert "Rango agotado" in warning


def test_warning_within_30_days_of_expiry_and_after():
    until = date(2027, 6, 30)
    assert resolution_warnings(resolution=_resolution(valid_until=until), today=until - timedelta(days=31)) == []
    (warning,) = resolution_warnings(resolution=_resolution(valid_until=until), today=until - timedelta(days=30))
    assert "vence en 30 días (30/06/2027)" in warning
    (warning,) = resolution_warnings(resolution=_resolution(valid_until=until), today=until)
    assert "vence hoy" in warning
    (warning,) = resolution_warnings(resolution=_resolution(valid_until=until), today=until + timedelta(days=1))
    assert "vencida desde el 30/06/2027" in warning
    assert resolution_warnings(resolution=_resolution(valid_until=until, active=False), today=until) == []


def test_the_warnings_filter_agrees_with_the_warnings(today):
    caja_n2 = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=caja_n2.pk).update(next_number=F("range_from") + 4500)  # exactly 90 %
    nearly = InvoiceResolution.objects.get(terminal__code="N1-CAJA-02")
    InvoiceResolution.objects.filter(pk=nearly.pk).update(next_number=F("range_from") + 4499)  # 89.98 %
    expiring = InvoiceResolution.objects.get(terminal__code="N1-KIOSCO-01")
    InvoiceResolution.objects.filter(pk=expiring.pk).update(valid_until=today + timedelta(days=3))

    flagged = set(
        InvoiceResolution.objects.filter(resolutions_with_warnings_q(today=today)).values_list("pk", flat=True)
    )

    assert flagged == {r.pk for r in InvoiceResolution.objects.all() if resolution_warnings(resolution=r, today=today)}
    assert flagged == {caja_n2.pk, expiring.pk}


def test_terminal_warnings_name_the_resolution_that_numbers_it(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    assert invoicing_warnings_for_terminal(terminal=caja, today=today) == []

    InvoiceResolution.objects.filter(pk=resolution_of("N2").pk).update(next_number=F("range_to") + 1)
    (warning,) = invoicing_warnings_for_terminal(terminal=caja, today=today)
    assert "Rango agotado" in warning

    InvoiceResolution.objects.filter(pk=resolution_of("N2").pk).update(active=False)
    (warning,) = invoicing_warnings_for_terminal(terminal=caja, today=today)
    assert "No hay una resolución" in warning


# --- validation ------------------------------------------------------------------------


def _errors(resolution: InvoiceResolution) -> dict[str, list[str]]:
    try:
        resolution_validate(resolution=resolution)
    except ValidationError as exc:
        return exc.message_dict
    return {}


def test_overlapping_ranges_of_one_prefix_are_refused(today):
    n2 = resolution_of("N2")
    overlapping = InvoiceResolution(
        **{**_fields(n2), "range_from": n2.range_to - 10, "range_to": n2.range_to + 10, "next_number": n2.range_to}
    )

    assert "se cruza con el de la resolución" in _errors(overlapping)["range_from"][0]
    overlapping.prefix = "FX"
    assert _errors(overlapping) == {}
    with pytest.raises(ValidationError):
        resolution_save(resolution=InvoiceResolution(**{**_fields(n2), "range_from": n2.range_from + 1}))


def _fields(resolution: InvoiceResolution) -> dict:
    return {
        f.attname: getattr(resolution, f.attname) for f in InvoiceResolution._meta.concrete_fields if f.attname != "id"
    }


def test_other_institutions_may_use_the_same_prefix_and_numbers(today):
    n2 = resolution_of("N2")
    n3 = resolution_of("N3")
    copy = InvoiceResolution(**{**_fields(n3), "range_from": n2.range_from, "range_to": n2.range_to})
    copy.next_number = copy.range_from
    assert _errors(copy) == {}


def test_owner_next_number_and_dates_are_validated(today):
    n2 = resolution_of("N2")
    other_node = Node.objects.get(code="N3")
    base = {**_fields(n2), "range_from": 800_001, "range_to": 800_100, "next_number": 800_001}

    assert "node" in _errors(InvoiceResolution(**{**base, "node_id": other_node.pk}))
    terminal_of_other = Terminal.objects.get(code="N3-CAJA-01")
    errors = _errors(
        InvoiceResolution(**{**base, "level": "terminal", "node_id": None, "terminal_id": terminal_of_other.pk})
    )
    assert "terminal" in errors
    assert "level" in _errors(InvoiceResolution(**{**base, "level": "institution"}))
    kitchen = Terminal.objects.get(code="N1-COCINA-01")
    assert "terminal" in _errors(
        InvoiceResolution(**{**base, "level": "terminal", "terminal_id": kitchen.pk, "node_id": None})
    )
    assert "next_number" in _errors(InvoiceResolution(**{**base, "next_number": 800_102}))
    assert _errors(InvoiceResolution(**{**base, "next_number": 800_101})) == {}  # exhausted is allowed
    assert "valid_until" in _errors(
        InvoiceResolution(**{**base, "valid_until": base["valid_from"] - timedelta(days=1)})
    )
    assert "range_to" in _errors(InvoiceResolution(**{**base, "range_to": 800_000}))


def test_next_number_cannot_go_back_below_numbers_already_used(today):
    caja = Terminal.objects.get(code="N2-CAJA-01")
    sale = sale_record(caja, occurred_at=at(8), seq=1)
    invoices_deferred_assign(sale_ids=[sale.pk])
    resolution = resolution_of("N2")
    resolution.next_number = resolution.range_from
    assert "next_number" in _errors(resolution)


@pytest.mark.postgres
def test_postgresql_refuses_overlapping_ranges_in_the_database(today):
    n2 = resolution_of("N2")
    overlapping = {**_fields(n2), "range_from": n2.range_to, "range_to": n2.range_to + 5, "next_number": n2.range_to}
    with pytest.raises(IntegrityError, match="resolution_range_no_overlap"), transaction.atomic():
        InvoiceResolution.objects.create(**overlapping)
    InvoiceResolution.objects.create(**{**overlapping, "prefix": "FX"})


# --- concurrency (real PostgreSQL) ------------------------------------------------------


def _in_threads(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; each thread has its own connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_online_sales_get_distinct_consecutive_numbers(demo):
    today = timezone.localdate()
    casinos = [Terminal.objects.get(code="N3-CAJA-01"), Terminal.objects.get(code="N3-CAJA-02")]
    start = resolution_of("N3").next_number
    per_thread, threads = 5, 8

    def work(i: int) -> list[int]:
        numbers = []
        for round_ in range(per_thread):
            with transaction.atomic():
                numbers += invoice_number_take(terminal=casinos[(i + round_) % 2], on=today)[1]
        # One sale in every thread fails after numbering: its number must go back to the pool.
        with pytest.raises(SaleFailedError):
            _take_then_fail(terminal=casinos[i % 2], on=today)
        return numbers

    results = _in_threads(threads, work)

    taken = sorted(n for numbers in results for n in numbers)
    assert taken == list(range(start, start + per_thread * threads))
    assert resolution_of("N3").next_number == start + per_thread * threads


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deferred_runs_never_double_number(demo):
    casino_1, casino_2 = Terminal.objects.get(code="N3-CAJA-01"), Terminal.objects.get(code="N3-CAJA-02")
    sales = [
        sale_record(casino_1 if i % 2 else casino_2, occurred_at=at(6 + i // 10, i % 60), seq=i + 1) for i in range(40)
    ]
    ids = [s.pk for s in sales]
    start = resolution_of("N3").next_number

    # Four reconcile workers receive overlapping (shuffled) lists of the same sales.
    results = _in_threads(4, lambda i: invoices_deferred_assign(sale_ids=ids[i * 5 :] + ids[: i * 5]))

    assert sum(results) == 40
    numbers = list(Sale.objects.filter(pk__in=ids).values_list("invoice_number", flat=True))
    assert sorted(numbers) == list(range(start, start + 40))
    assert resolution_of("N3").next_number == start + 40
    in_time_order = sorted(sales, key=lambda s: (s.occurred_at, s.terminal_id, s.seq))
    assert _numbers(in_time_order) == list(range(start, start + 40))
    assert SaleFlag.objects.filter(sale_id__in=ids, code=FlagCode.INVOICE_DEFERRED).count() == 40
