"""Deferred invoice numbers: offline sales at node or institution level arrive without an
invoice and are numbered by reconciliation, in time-of-sale order within what it
reconciles, once, inside the range (``sales.reconcile``, ``billing.invoicing``)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing import PENDING_Q, invoices_pending_assign, invoices_pending_count, resolution_save
from billing.models import InvoiceResolution
from billing.tasks import invoices_pending_assign as invoices_pending_assign_task
from sales.models import FlagCode, InvoiceSource, Sale, SaleFlag
from sales.reconcile import sales_chunk_reconcile, sales_reconcile
from tests.billing.test_invoicing import successor_of
from tests.sales.payloads import BATCHES_URL, batch, cash_sale, sale_url
from tests.sales.stored_sales import SaleSpec, stored_sales_create

pytestmark = pytest.mark.django_db


def institution_resolution() -> InvoiceResolution:
    return InvoiceResolution.objects.get(level="institution", institution__code="EMP-ANDINA", active=True)


def offline_cafe(occurred_at, seq: int):
    return cash_sale(sku="AND-CAFE", price="1800.00", occurred_at=occurred_at.isoformat(), seq=seq)


def invoices() -> dict[str, int | None]:
    return {str(pk): n for pk, n in Sale.objects.values_list("pk", "invoice_number")}


def test_offline_batch_at_institution_level_is_numbered_after_sync_in_time_of_sale_order(
    pos_client, at, django_capture_on_commit_callbacks
):
    # Given two registers of N3 (institution-level numbering) that sold offline, and whose
    # batches arrive newest first
    resolution = institution_resolution()
    first = resolution.next_number
    caja1 = [offline_cafe(at(m), seq) for seq, m in enumerate([30, 10, 50], start=1)]
    caja2 = [offline_cafe(at(m), seq) for seq, m in enumerate([40, 20], start=1)]

    # When both batches are uploaded (reconciliation runs on commit)
    with django_capture_on_commit_callbacks(execute=True):
        one = pos_client("N3-CAJA-02").post(BATCHES_URL, batch(*caja2), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        two = pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*caja1), format="json")

    # Then every sale was accepted without a number, and reconciliation numbered each
    # batch in time of sale, from the shared institution range
    assert one.json()["accepted"] == 2
    assert two.json()["accepted"] == 3
    numbers = invoices()
    assert [numbers[s["id"]] for s in sorted(caja2, key=lambda s: s["occurred_at"])] == [first, first + 1]
    assert [numbers[s["id"]] for s in sorted(caja1, key=lambda s: s["occurred_at"])] == [
        first + 2,
        first + 3,
        first + 4,
    ]
    assert set(Sale.objects.values_list("invoice_source", flat=True)) == {InvoiceSource.SERVER}
    assert SaleFlag.objects.filter(code=FlagCode.INVOICE_DEFERRED).count() == 5
    resolution.refresh_from_db()
    assert resolution.next_number == first + 5

    # And the register reads the final invoice back
    detail = pos_client("N3-CAJA-01").get(sale_url(caja1[1]["id"])).json()
    assert detail["reconciled"] is True
    assert "invoice_deferred" in detail["flags"]
    assert detail["invoice"] == {
        "prefix": "FE",
        "number": first + 2,
        "resolution": resolution.number,
        "range_from": resolution.range_from,
        "range_to": resolution.range_to,
    }


def test_one_reconcile_run_numbers_in_time_of_sale_whatever_the_arrival(pos_client, at):
    resolution = institution_resolution()
    first = resolution.next_number
    sales = [offline_cafe(at(m), seq) for seq, m in enumerate([30, 10, 50, 20], start=1)]
    # Uploaded in two batches, reconciled together (e.g. by the sweep)
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*sales[2:]), format="json")
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*sales[:2]), format="json")
    assert set(invoices().values()) == {None}  # on_commit does not run inside the test transaction

    assert sales_reconcile() == 4

    numbers = invoices()
    assert [numbers[s["id"]] for s in sorted(sales, key=lambda s: s["occurred_at"])] == list(range(first, first + 4))


def test_node_level_offline_sales_are_numbered_from_the_nodes_range(pos_client, at):
    resolution = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    sales = [cash_sale(occurred_at=at(m).isoformat()) for m in (5, 1, 3)]
    assert pos_client("N2-CAJA-01").post(BATCHES_URL, batch(*sales), format="json").json()["accepted"] == 3

    sales_reconcile()

    numbers = invoices()
    ordered = sorted(sales, key=lambda s: s["occurred_at"])
    assert [numbers[s["id"]] for s in ordered] == [resolution.next_number + i for i in range(3)]


def test_reconciling_again_changes_no_number(pos_client, at):
    sales = [offline_cafe(at(m), seq) for seq, m in enumerate([3, 1, 2], start=1)]
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*sales), format="json")
    sales_reconcile()
    before = invoices()
    next_before = institution_resolution().next_number
    flags_before = sorted(SaleFlag.objects.values_list("sale_id", "code", "detail"), key=repr)

    # Redo the whole chunk (as a crash-and-retry after commit would) and the sweep
    with transaction.atomic():
        sales_chunk_reconcile(sale_ids=list(Sale.objects.values_list("pk", flat=True)))
    assert sales_reconcile() == 0

    assert invoices() == before
    assert institution_resolution().next_number == next_before
    assert sorted(SaleFlag.objects.values_list("sale_id", "code", "detail"), key=repr) == flags_before


def test_terminal_level_offline_sales_keep_the_registers_number_or_none(pos_client, at):
    # N1 numbers per register: the server never numbers its sales
    sales = [cash_sale(occurred_at=at(1).isoformat())]
    pos_client("N1-CAJA-01").post(BATCHES_URL, batch(*sales), format="json")

    sales_reconcile()

    assert invoices() == {sales[0]["id"]: None}
    assert not SaleFlag.objects.filter(code=FlagCode.INVOICE_DEFERRED).exists()


def test_sales_a_range_cannot_number_are_still_reconciled_and_stay_unnumbered(pos_client, at, caplog):
    resolution = institution_resolution()
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_to)  # one left
    sales = [offline_cafe(at(m), seq) for seq, m in enumerate([2, 1], start=1)]
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*sales), format="json")

    assert sales_reconcile() == 2

    assert invoices() == {sales[1]["id"]: resolution.range_to, sales[0]["id"]: None}
    assert Sale.objects.filter(reconciled_at__isnull=True).count() == 0
    assert "left unnumbered" in caplog.text


def test_reconcile_of_500_node_level_sales_costs_a_bounded_number_of_queries(demo, at, django_assert_max_num_queries):
    # The same bound as the terminal-level test in test_reconcile.py: numbering adds a
    # fixed handful of statements (savepoint, locks, one UPDATE per resolution, the bulk
    # UPDATE of the sales and the INSERT of the flags), not one per sale.
    specs = [
        SaleSpec(terminal=["N3-CAJA-01", "N3-CAJA-02"][i % 2], occurred_at=at(i % 600), lines=(("AND-CAFE", 1),))
        for i in range(500)
    ]
    sales = stored_sales_create(specs)
    with django_assert_max_num_queries(50) as captured:
        assert sales_reconcile(sale_ids=[s.pk for s in sales]) == 500
    print(f"reconcile of 500 deferred-numbered sales: {len(captured.captured_queries)} queries")
    assert Sale.objects.filter(invoice_number__isnull=True).count() == 0


# --- Property: numbers are unique, in range and complete, whatever the arrival order ------

TERMINALS = ["N3-CAJA-01", "N3-CAJA-02"]

drafts_strategy = st.lists(
    st.tuples(st.integers(0, len(TERMINALS) - 1), st.integers(0, 40)),  # terminal, minute (ties on purpose)
    min_size=1,
    max_size=16,
)


def _specs(drafts: list[tuple[int, int]], base_time) -> list[SaleSpec]:
    """One offline café sale per draft (terminal index, minute), each register's seq in
    time order, ids by draft index."""
    seqs = dict.fromkeys(TERMINALS, 0)
    specs = []
    for index, (t, minute) in sorted(enumerate(drafts), key=lambda d: (d[1][1], d[0])):
        seqs[TERMINALS[t]] += 1
        specs.append(
            SaleSpec(
                id=uuid.UUID(int=index + 1),
                terminal=TERMINALS[t],
                seq=seqs[TERMINALS[t]],
                occurred_at=base_time + timedelta(minutes=minute),
                lines=(("AND-CAFE", 1),),
            )
        )
    return specs


@settings(
    max_examples=int(os.environ.get("PAYGO_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drafts=drafts_strategy, data=st.data())
def test_any_arrival_order_numbers_every_sale_once_inside_the_range(demo, base_time, drafts, data):
    resolution = institution_resolution()
    specs = _specs(drafts, base_time)
    order = data.draw(st.permutations(range(len(specs))), label="arrival order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(specs) - 1)), max_size=4), label="chunk cuts"))
    chunks = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    duplicates = data.draw(
        st.lists(st.tuples(st.integers(0, len(chunks) - 1), st.integers(0, len(specs) - 1)), max_size=5),
        label="duplicates (chunk, sale)",
    )
    for chunk_index, sale_index in duplicates:
        chunks[chunk_index] = [*chunks[chunk_index], sale_index]

    with transaction.atomic():
        numbered_per_chunk = []
        for chunk in chunks:
            stored_sales_create([specs[i] for i in chunk])
            sales_reconcile(sale_ids=[specs[i].id for i in chunk])
            numbered_per_chunk.append({specs[i].id for i in chunk})

        rows = list(Sale.objects.values_list("pk", "invoice_number", "occurred_at", "terminal__code", "seq"))
        numbers = [n for _, n, *_ in rows]
        after = InvoiceResolution.objects.get(pk=resolution.pk)
        deferred_flags = SaleFlag.objects.filter(code=FlagCode.INVOICE_DEFERRED).count()
        transaction.set_rollback(True)

    # Every offline sale ends numbered, exactly once, no number twice, all inside the range,
    # gap-free from where the range stood, and the range moved past exactly those numbers.
    assert len(rows) == len(specs)
    assert None not in numbers
    assert len(set(numbers)) == len(numbers)
    assert sorted(numbers) == list(range(resolution.next_number, resolution.next_number + len(specs)))
    assert all(resolution.range_from <= n <= resolution.range_to for n in numbers)
    assert after.next_number == resolution.next_number + len(specs)
    assert deferred_flags == len(specs)
    # Within what one reconcile run numbered, numbers follow (occurred_at, terminal, seq).
    by_id = {pk: (n, (occurred_at, terminal, seq)) for pk, n, occurred_at, terminal, seq in rows}
    seen: set = set()
    for chunk_ids in numbered_per_chunk:
        fresh = chunk_ids - seen
        seen |= chunk_ids
        ordered = sorted(fresh, key=lambda pk: by_id[pk][1])
        assert [by_id[pk][0] for pk in ordered] == sorted(by_id[pk][0] for pk in fresh)


# --- A backlog left by an exhausted, expired or missing range ends numbered -------------


def _exhaust(resolution: InvoiceResolution) -> None:
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_to + 1)


def test_saving_a_new_resolution_numbers_the_backlog_an_exhausted_range_left(
    pos_client, at, django_capture_on_commit_callbacks
):
    # Given an institution whose range ran out before three offline sales were reconciled
    old = institution_resolution()
    _exhaust(old)
    sales = [offline_cafe(at(m), seq) for seq, m in enumerate([20, 5, 12], start=1)]
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*sales), format="json")
    assert sales_reconcile() == 3
    assert set(invoices().values()) == {None}
    assert invoices_pending_count() == 3
    assert pos_client("N3-CAJA-01").get(sale_url(sales[0]["id"])).json()["invoice"] is None

    # When staff save the next resolution (the service the admin calls)
    new = successor_of(old, saved=False)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        resolution_save(resolution=new)

    # Then the backlog is numbered from it, in time of sale, flagged, and readable by the register
    numbers = invoices()
    ordered = sorted(sales, key=lambda s: s["occurred_at"])
    assert [numbers[s["id"]] for s in ordered] == [900_001, 900_002, 900_003]
    assert invoices_pending_count() == 0
    assert SaleFlag.objects.filter(code=FlagCode.INVOICE_DEFERRED).count() == 3
    new.refresh_from_db()
    assert new.next_number == 900_004
    detail = pos_client("N3-CAJA-01").get(sale_url(ordered[0]["id"])).json()
    assert detail["invoice"] == {
        "prefix": new.prefix,
        "number": 900_001,
        "resolution": new.number,
        "range_from": 900_001,
        "range_to": 900_010,
    }


def test_the_backlog_is_numbered_before_the_sales_that_follow_it(pos_client, at):
    # Given a node-level backlog of two sales left while N2 had no numbers
    old = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    _exhaust(old)
    backlog = [cash_sale(occurred_at=at(m).isoformat(), seq=seq) for seq, m in enumerate([3, 1], start=1)]
    pos_client("N2-CAJA-01").post(BATCHES_URL, batch(*backlog), format="json")
    sales_reconcile()
    # and a new resolution created without the after-save run (e.g. loaded by a script)
    successor_of(old)

    # When later offline sales of N2 are reconciled
    later = [cash_sale(occurred_at=at(m).isoformat(), seq=seq) for seq, m in enumerate([9, 7], start=3)]
    pos_client("N2-CAJA-01").post(BATCHES_URL, batch(*later), format="json")
    assert sales_reconcile() == 2

    # Then the same run numbered the backlog first: numbers follow the time of sale
    numbers = invoices()
    ordered = sorted(backlog + later, key=lambda s: s["occurred_at"])
    assert [numbers[s["id"]] for s in ordered] == [900_001, 900_002, 900_003, 900_004]


def test_the_periodic_run_numbers_what_fits_and_keeps_the_rest_pending(pos_client, at, caplog):
    # Given backlogs at two owners: N2 (node level) and EMP-ANDINA (institution level)
    n2_old = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    andina_old = institution_resolution()
    _exhaust(n2_old)
    _exhaust(andina_old)
    n2_sales = [cash_sale(occurred_at=at(m).isoformat(), seq=seq) for seq, m in enumerate([1, 2, 3], start=1)]
    n3_sales = [offline_cafe(at(m), seq) for seq, m in enumerate([4, 5], start=1)]
    pos_client("N2-CAJA-01").post(BATCHES_URL, batch(*n2_sales), format="json")
    pos_client("N3-CAJA-01").post(BATCHES_URL, batch(*n3_sales), format="json")
    sales_reconcile()
    assert invoices_pending_count() == 5
    # N2 gets a range of two numbers; EMP-ANDINA one that only starts tomorrow
    successor_of(n2_old, size=2)
    tomorrow = at(0).date() + timedelta(days=1)
    successor_of(andina_old, number="18764008888", valid_from=tomorrow)

    # When the periodic task runs (twice: it is idempotent)
    assert invoices_pending_assign_task.delay().get() == 2
    assert invoices_pending_assign_task.delay().get() == 0

    # Then N2's two oldest are numbered, the rest waits, pending and logged, never out of range
    numbers = invoices()
    assert [numbers[s["id"]] for s in n2_sales] == [900_001, 900_002, None]
    assert [numbers[s["id"]] for s in n3_sales] == [None, None]
    assert invoices_pending_count() == 3
    assert set(Sale.objects.filter(PENDING_Q).values_list("pk", flat=True)) == {
        uuid.UUID(n2_sales[2]["id"]),
        *(uuid.UUID(s["id"]) for s in n3_sales),
    }
    assert "left unnumbered" in caplog.text


def test_with_no_backlog_the_periodic_run_costs_one_query(demo, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert invoices_pending_assign() == 0


@settings(
    max_examples=int(os.environ.get("PAYGO_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drafts=drafts_strategy, data=st.data())
def test_a_range_running_out_midway_still_ends_with_every_sale_numbered_once(demo, base_time, drafts, data):
    old = institution_resolution()
    left = data.draw(st.integers(0, len(drafts)), label="numbers left in the old range")
    specs = _specs(drafts, base_time)
    order = data.draw(st.permutations(range(len(specs))), label="arrival order")
    cut = data.draw(st.integers(0, len(order)), label="sales reconciled before the new resolution")

    with transaction.atomic():
        InvoiceResolution.objects.filter(pk=old.pk).update(next_number=old.range_to + 1 - left)
        stored_sales_create([specs[i] for i in order[:cut]])
        sales_reconcile(sale_ids=[specs[i].id for i in order[:cut]])
        new = successor_of(old, size=len(specs))
        stored_sales_create([specs[i] for i in order[cut:]])
        sales_reconcile(sale_ids=[specs[i].id for i in order[cut:]])
        invoices_pending_assign()
        rows = list(Sale.objects.values_list("invoice_resolution_id", "invoice_number"))
        transaction.set_rollback(True)

    ranges = {old.pk: (old.range_to + 1 - left, old.range_to), new.pk: (new.range_from, new.range_to)}
    assert len(rows) == len(specs)
    assert all(number is not None for _, number in rows)
    assert len(set(rows)) == len(rows)
    assert all(ranges[r][0] <= n <= ranges[r][1] for r, n in rows)
