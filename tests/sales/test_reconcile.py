"""Reconciliation of stored sales: each effect, time order, idempotency, crashes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import BalanceMovement, Customer, UnitBalance, UnitMovement
from inventory.models import NegativeStockEvent, NegativeStockStatus, NodeStock, Product, StockMovement
from inventory.services import stock_movement_record
from nodes.models import Node, Terminal
from sales import reconcile as reconcile_module
from sales import tasks
from sales.models import Comanda, FlagCode, Sale, SaleFlag, SequenceGap
from sales.reconcile import sales_chunk_reconcile, sales_reconcile
from tests.sales.stored_sales import SaleSpec, stored_sale_create, stored_sales_create

pytestmark = pytest.mark.django_db


def stock(sku: str, node: str = "N1") -> Decimal:
    return NodeStock.objects.get(node__code=node, product__sku=sku).quantity


def balance(code: str) -> Decimal:
    return Customer.objects.get(code=code).balance


def flags(*sales: Sale, code: str) -> list[bool]:
    flagged = set(SaleFlag.objects.filter(code=code).values_list("sale_id", flat=True))
    return [sale.pk in flagged for sale in sales]


def ana_juices(at, minutes: int, count: int) -> SaleSpec:
    """Ana (C-000123, 20000 a day at most) buys ``count`` juices of 3000."""
    return SaleSpec(terminal="N1-CAJA-01", occurred_at=at(minutes), customer="C-000123", lines=(("SKU-JUGO", count),))


def tomas_paygo(at, minutes: int, amount: str, *, online: bool = False) -> SaleSpec:
    """Tomás (C-000200, at -4500 with 5000 of overdraft) pays ``amount`` from his balance;
    an online sale gets its balance movement at ingest."""
    return SaleSpec(
        terminal="N1-CAJA-01",
        occurred_at=at(minutes),
        customer="C-000200",
        lines=(("SKU-FRUTA", 1, amount),),
        payments=(("paygo", amount),),
        offline=not online,
    )


def test_offline_sale_gets_its_stock_balance_units_and_comanda(demo, at):
    # Given an offline sale: 2 empanadas paid from the payGO balance, a lunch paid with a unit
    sale = stored_sale_create(
        SaleSpec(
            terminal="N1-CAJA-01",
            occurred_at=at(10),
            customer="C-000123",
            lines=(("SKU-EMPANADA", 2), ("SKU-ALMUERZO", 1, "0.00")),
            payments=(("paygo", "7000.00"), ("units", "1", "ALMUERZO")),
        )
    )
    # When it is reconciled
    assert sales_reconcile(sale_ids=[sale.pk]) == 1
    # Then every effect is there once
    sale.refresh_from_db()
    assert sale.reconciled_at is not None
    assert stock("SKU-EMPANADA") == Decimal("38")
    movement = StockMovement.objects.get(sale_line__sale=sale)
    assert (movement.quantity, movement.occurred_at) == (Decimal("-2"), sale.occurred_at)
    assert balance("C-000123") == Decimal("5000.00")
    assert BalanceMovement.objects.get(payment__sale=sale).amount == Decimal("-7000.00")
    assert UnitBalance.objects.get(customer__code="C-000123", unit_type="ALMUERZO").quantity == 11
    assert UnitMovement.objects.get(payment__sale=sale).quantity == -1
    comanda = Comanda.objects.get(sale=sale)
    assert comanda.late is True
    assert comanda.received_at == sale.received_at
    assert comanda.node.code == "N1"
    assert comanda.items == [{"sku": "SKU-ALMUERZO", "name": "Almuerzo del día", "quantity": "1.000"}]
    assert not SaleFlag.objects.filter(sale=sale).exists()


def test_online_sale_movements_from_ingest_are_not_written_again(demo, at):
    sale = stored_sale_create(
        SaleSpec(
            terminal="N1-CAJA-01",
            occurred_at=at(10),
            offline=False,
            customer="C-000123",
            lines=(("SKU-EMPANADA", 1), ("SKU-AREPA", 1)),
            payments=(("paygo", "6700.00"),),
        )
    )
    assert stock("SKU-EMPANADA") == Decimal("39")  # written at ingest

    sales_reconcile(sale_ids=[sale.pk])

    assert StockMovement.objects.filter(sale_line__sale=sale).count() == 1
    assert BalanceMovement.objects.filter(payment__sale=sale).count() == 1
    assert stock("SKU-EMPANADA") == Decimal("39")
    assert balance("C-000123") == Decimal("5300.00")
    assert Comanda.objects.get(sale=sale).late is False


def test_negative_stock_episode_from_the_sale_going_below_zero_until_a_receipt(demo, at):
    # Given 4 sandwiches at N1 and offline sales: 3 (→1), 2 (→-1), 1 (→-2), receipt +5 (→3), 1 (→2)
    s1, s2, s3 = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-SANDWICH", 3),)),
            SaleSpec(terminal="N1-CAJA-02", occurred_at=at(20), lines=(("SKU-SANDWICH", 2),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(30), lines=(("SKU-SANDWICH", 1),)),
        ]
    )
    stock_movement_record(
        node=Node.objects.get(code="N1"),
        product=Product.objects.get(sku="SKU-SANDWICH"),
        quantity=Decimal("5"),
        occurred_at=at(40),
    )
    (s5,) = stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(50), lines=(("SKU-SANDWICH", 1),))])

    sales_reconcile()

    event = NegativeStockEvent.objects.get()
    assert event.starting_sale_id == s2.pk
    assert (event.quantity_before, event.quantity_after, event.lowest_quantity) == (
        Decimal("1"),
        Decimal("-1"),
        Decimal("-2"),
    )
    assert event.started_at == s2.occurred_at
    assert event.ended_at == at(40)
    assert set(event.sales.values_list("pk", flat=True)) == {s2.pk, s3.pk}
    assert flags(s1, s2, s3, s5, code=FlagCode.NEGATIVE_STOCK) == [False, True, True, False]
    assert stock("SKU-SANDWICH") == Decimal("2")


def test_a_late_earlier_sale_moves_the_start_of_the_episode(demo, at):
    s1, s2 = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-SANDWICH", 3),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(20), lines=(("SKU-SANDWICH", 2),)),
        ]
    )
    sales_reconcile()
    assert NegativeStockEvent.objects.get().starting_sale_id == s2.pk

    # When a register that was offline uploads a sale made before both
    (s0,) = stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(5), lines=(("SKU-SANDWICH", 2),))])
    sales_reconcile()

    # Then the episode starts at s1 (4-2=2, 2-3=-1) and the stale one is gone
    event = NegativeStockEvent.objects.get()
    assert event.starting_sale_id == s1.pk
    assert (event.quantity_before, event.lowest_quantity, event.ended_at) == (Decimal("2"), Decimal("-3"), None)
    assert set(event.sales.values_list("pk", flat=True)) == {s1.pk, s2.pk}
    assert flags(s0, s1, s2, code=FlagCode.NEGATIVE_STOCK) == [False, True, True]


def test_a_resolved_episode_that_is_no_longer_a_start_is_kept_with_a_note(demo, at):
    s1, s2 = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-SANDWICH", 3),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(20), lines=(("SKU-SANDWICH", 2),)),
        ]
    )
    sales_reconcile()
    NegativeStockEvent.objects.update(status=NegativeStockStatus.RESOLVED, resolution_note="Revisado")

    stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(5), lines=(("SKU-SANDWICH", 2),))])
    sales_reconcile()
    sales_reconcile(sale_ids=[s1.pk, s2.pk])  # rerun: the note is not added twice

    old = NegativeStockEvent.objects.get(starting_sale=s2)
    assert old.status == NegativeStockStatus.RESOLVED
    assert old.resolution_note.startswith("Revisado")
    assert old.resolution_note.count("[Conciliación]") == 1
    assert NegativeStockEvent.objects.get(starting_sale=s1).status == NegativeStockStatus.OPEN


def test_late_receipt_before_the_window_keeps_one_episode_when_later_sales_arrive(demo, at):
    # An episode still open, then more sales inside it arrive in a later reconcile.
    s1, s2 = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-SANDWICH", 5),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(20), lines=(("SKU-SANDWICH", 1),)),
        ]
    )
    sales_reconcile()
    (s3,) = stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(30), lines=(("SKU-SANDWICH", 1),))])
    sales_reconcile()

    event = NegativeStockEvent.objects.get()
    assert event.starting_sale_id == s1.pk
    assert event.lowest_quantity == Decimal("-3")
    assert set(event.sales.values_list("pk", flat=True)) == {s1.pk, s2.pk, s3.pk}


def test_a_receipt_entered_after_the_fact_rewrites_the_episode_from_its_time(demo, at):
    # 4 sandwiches: 3 at 10:00 (→1), 2 at 20:00 (→-1), 1 at 30:00 (→-2): one open episode.
    s1, s2, s3 = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-SANDWICH", 3),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(20), lines=(("SKU-SANDWICH", 2),)),
            SaleSpec(terminal="N1-CAJA-02", occurred_at=at(30), lines=(("SKU-SANDWICH", 1),)),
        ]
    )
    sales_reconcile()
    assert NegativeStockEvent.objects.get().starting_sale_id == s2.pk

    # When staff enter a receipt of 2 made at 25:00 (→1 before s3, which then leaves 0)
    stock_movement_record(
        node=Node.objects.get(code="N1"),
        product=Product.objects.get(sku="SKU-SANDWICH"),
        quantity=Decimal("2"),
        occurred_at=at(25),
    )

    # Then the episode ends at the receipt, s3 is no longer in it nor flagged
    event = NegativeStockEvent.objects.get()
    assert (event.starting_sale_id, event.ended_at, event.lowest_quantity) == (s2.pk, at(25), Decimal("-1"))
    assert set(event.sales.values_list("pk", flat=True)) == {s2.pk}
    assert flags(s1, s2, s3, code=FlagCode.NEGATIVE_STOCK) == [False, True, False]

    # And a sale arriving later inside the old episode's time continues from the receipt
    (s4,) = stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(40), lines=(("SKU-SANDWICH", 1),))])
    sales_reconcile()
    events = list(NegativeStockEvent.objects.order_by("started_at"))
    assert [e.starting_sale_id for e in events] == [s2.pk, s4.pk]
    assert (events[1].quantity_before, events[1].lowest_quantity, events[1].ended_at) == (
        Decimal("0"),
        Decimal("-1"),
        None,
    )


def test_an_episode_continued_chunk_after_chunk_keeps_its_members_and_lowest(demo, at, django_assert_max_num_queries):
    # One sandwich sold per minute, reconciled one sale at a time: 4 → 0 → -1 … → -6.
    sales = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10 + minute), lines=(("SKU-SANDWICH", 1),))
            for minute in range(10)
        ]
    )
    for sale in sales:
        with django_assert_max_num_queries(100) as captured:
            sales_reconcile(sale_ids=[sale.pk])
        # In time order the episode's stored lowest is complete: no window over its members.
        assert not any("stock_now - x.later" in query["sql"] for query in captured.captured_queries)

    event = NegativeStockEvent.objects.get()
    assert event.starting_sale_id == sales[4].pk
    assert (event.quantity_before, event.quantity_after, event.lowest_quantity) == (
        Decimal("0"),
        Decimal("-1"),
        Decimal("-6"),
    )
    assert set(event.sales.values_list("pk", flat=True)) == {sale.pk for sale in sales[4:]}

    # A late sale in the middle of the episode lowers what every later member left.
    (late,) = stored_sales_create([SaleSpec(terminal="N1-CAJA-02", occurred_at=at(16), lines=(("SKU-SANDWICH", 2),))])
    with django_assert_max_num_queries(100) as captured:
        sales_reconcile()
    # Members walked before now follow it: their lowest before it comes from the ledger.
    assert any("stock_now - x.later" in query["sql"] for query in captured.captured_queries)
    event.refresh_from_db()
    assert event.lowest_quantity == Decimal("-8")
    assert set(event.sales.values_list("pk", flat=True)) == {sale.pk for sale in sales[4:]} | {late.pk}


def test_daily_max_flags_the_sale_that_passes_it_in_time_of_sale_not_arrival(demo, at):
    # Ana (C-000123) may spend 20000 a day.
    s_b, s_c = stored_sales_create([ana_juices(at, 60, 4), ana_juices(at, 90, 3)])  # 12000, then 9000
    sales_reconcile()
    assert flags(s_b, s_c, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True]

    # A sale made earlier that day arrives late: 9000 → 21000 at s_b → 30000 at s_c
    (s_a,) = stored_sales_create([ana_juices(at, 30, 3)])
    sales_reconcile()
    assert flags(s_a, s_b, s_c, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True, True]
    detail = SaleFlag.objects.get(sale=s_b, code=FlagCode.DAILY_MAX_EXCEEDED).detail
    assert (Decimal(detail["before"]), Decimal(detail["after"])) == (Decimal("9000"), Decimal("21000"))
    # Written exactly as sales.rules words it from the lines (quantity × unit price keeps
    # their decimals), on either database.
    assert (detail["before"], detail["after"]) == ("9000.00", "21000.00000")


def test_daily_max_continues_the_day_from_the_stored_totals_before_the_chunk(demo, at):
    # Ana (C-000123) may spend 20000 a day. Her morning is reconciled first; a later chunk
    # walks her day only from its own earliest sale on, opening with what the morning's
    # stored sales add up to, and leaves the morning's flags as they are.
    morning = stored_sales_create([ana_juices(at, 30, 2), ana_juices(at, 60, 2)])  # 6000, 6000
    sales_reconcile()
    assert flags(*morning, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, False]
    # A marker on the morning's first sale: a walk of the whole day would clear it.
    SaleFlag.objects.create(sale=morning[0], code=FlagCode.DAILY_MAX_EXCEEDED, detail={"marker": True})

    afternoon = stored_sales_create([ana_juices(at, 120, 2), ana_juices(at, 150, 1)])  # 18000, then 21000
    sales_reconcile()
    assert flags(*afternoon, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True]
    detail = SaleFlag.objects.get(sale=afternoon[1], code=FlagCode.DAILY_MAX_EXCEEDED).detail
    assert (detail["before"], detail["after"]) == ("18000.00", "21000.00000")
    assert SaleFlag.objects.get(sale=morning[0], code=FlagCode.DAILY_MAX_EXCEEDED).detail == {"marker": True}


def test_a_customer_without_maximum_gets_no_daily_max_flag_from_the_chunk_on(demo, at):
    # Ana (C-000123) passes her 20000 with her second sale; then her maximum is lifted.
    morning = stored_sales_create([ana_juices(at, 30, 4), ana_juices(at, 60, 4)])  # 12000, 24000
    sales_reconcile()
    assert flags(*morning, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True]
    Customer.objects.filter(code="C-000123").update(daily_max=None)

    # A later sale: the sales from it on are evaluated, under no maximum now; the flag of
    # the sale before it stays what the maximum then in force made it.
    (afternoon,) = stored_sales_create([ana_juices(at, 90, 1)])
    sales_reconcile()
    assert flags(*morning, afternoon, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True, False]

    # A sale made between the morning's two arrives late: the day from it on is evaluated.
    (late,) = stored_sales_create([ana_juices(at, 45, 1)])
    sales_reconcile()
    assert flags(morning[0], late, morning[1], afternoon, code=FlagCode.DAILY_MAX_EXCEEDED) == [False] * 4


@pytest.mark.postgres
def test_the_daily_max_reads_each_customer_day_by_its_index_whatever_the_statistics(demo, at):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.reconcile import _day_sales

    # Given Ana's day stored, in a table whose statistics say it is tiny
    sales = stored_sales_create([ana_juices(at, 30, 1), ana_juices(at, 60, 1), ana_juices(at, 90, 1)])
    ana = sales[0].customer_id
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sales_sale")

    # When the daily maximum reads her day from her second sale on, and her whole day
    with CaptureQueriesContext(connection) as captured:
        rows = _day_sales({(ana, sales[0].business_date): sales[1].occurred_at})
        whole = _day_sales({(ana, sales[0].business_date): None})

    # Then it gets those sales, each day by one probe of the (customer, day) index, even
    # with the planner told to prefer any other join. (Scans of the whole table are off
    # too: a tiny table is read whole whatever the join, which would say nothing here.)
    assert sorted(row[5] for row in rows) == sorted(sale.pk for sale in sales[1:])
    assert sorted(row[5] for row in whole) == sorted(sale.pk for sale in sales)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + captured.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Cond: ((customer_id = d.customer_id) AND (business_date = d.day))" in plan, plan


def test_daily_max_counts_what_was_spent_before_as_the_stored_totals_like_the_online_check(demo, at):
    # Ana (C-000123) may spend 20000 a day. Her first sale is three lines of 0.005 × 1.00:
    # ingest stores each line's total rounded half up (0.01), so the sale's total is 0.03,
    # although its lines add up to 0.015. What she had spent before the next sale is 0.03
    # (the online check sums Sale.total too), so 19999.98 more passes the maximum.
    (first,) = stored_sales_create(
        [
            SaleSpec(
                terminal="N1-CAJA-01",
                occurred_at=at(30),
                customer="C-000123",
                lines=(("SKU-JUGO", "0.005", "1.00"),) * 3,
            )
        ]
    )
    Sale.objects.filter(pk=first.pk).update(total=Decimal("0.03"))
    (second,) = stored_sales_create(
        [
            SaleSpec(
                terminal="N1-CAJA-01",
                occurred_at=at(60),
                customer="C-000123",
                lines=(("SKU-JUGO", 1, "19999.98"),),
            )
        ]
    )
    sales_reconcile()
    assert flags(first, second, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True]
    detail = SaleFlag.objects.get(sale=second, code=FlagCode.DAILY_MAX_EXCEEDED).detail
    assert (detail["before"], detail["after"]) == ("0.03", "20000.01000")


def test_overdraft_moves_to_the_sale_that_really_went_past_the_limit(demo, at):
    # Tomás (C-000200) is at -4500 with 5000 of overdraft: 500 of room.
    (later,) = stored_sales_create([tomas_paygo(at, 60, "300.00")])
    sales_reconcile()
    assert flags(later, code=FlagCode.OVERDRAFT_EXCEEDED) == [False]

    (earlier,) = stored_sales_create([tomas_paygo(at, 30, "400.00")])
    sales_reconcile()
    assert flags(earlier, later, code=FlagCode.OVERDRAFT_EXCEEDED) == [False, True]
    assert balance("C-000200") == Decimal("-5200.00")


def test_a_backlog_chunk_leaves_the_later_sales_to_their_own_chunk(demo, at):
    # Ana (C-000123) may spend 20000 a day; Tomás (C-000200) has 500 of overdraft room.
    # A backlog is reconciled chunk by chunk in time order: the first chunk counts what
    # the later sales add (spent today; online sales' balance movements), but judges only
    # its own sales. The later ones are judged by their own chunk, with everything
    # stored by then, so the flags end the same as judging them at once.
    # Ana 12000, Tomás's room 500 → 100; then Ana 24000, Tomás's room 100 → -200.
    first, spender = stored_sales_create([ana_juices(at, 30, 4), tomas_paygo(at, 30, "400.00", online=True)])
    later, over = stored_sales_create([ana_juices(at, 60, 4), tomas_paygo(at, 60, "300.00", online=True)])
    assert sales_reconcile(sale_ids=[first.pk, spender.pk]) == 2
    assert flags(first, later, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, False]
    assert flags(spender, over, code=FlagCode.OVERDRAFT_EXCEEDED) == [False, False]

    # Its own chunk judges each later sale with what was spent before it.
    assert sales_reconcile() == 2
    assert flags(first, later, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, True]
    assert flags(spender, over, code=FlagCode.OVERDRAFT_EXCEEDED) == [False, True]
    detail = SaleFlag.objects.get(sale=later, code=FlagCode.DAILY_MAX_EXCEEDED).detail
    assert (detail["before"], detail["after"]) == ("12000.00", "24000.00000")

    # A reconciled later sale is still judged again when an earlier one arrives.
    (earliest,) = stored_sales_create([ana_juices(at, 10, 1)])  # 3000 → 15000 at first
    sales_reconcile()
    detail = SaleFlag.objects.get(sale=later, code=FlagCode.DAILY_MAX_EXCEEDED).detail
    assert (detail["before"], detail["after"]) == ("15000.00", "27000.00000")
    assert flags(earliest, first, code=FlagCode.DAILY_MAX_EXCEEDED) == [False, False]


def test_sequence_gaps_are_recomputed_per_terminal(demo, at):
    for seq in (1, 2, 5, 6, 9):
        stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(seq), seq=seq, lines=(("SKU-JUGO", 1),)))
    sales_reconcile()
    gaps = lambda: list(SequenceGap.objects.values_list("first_missing", "last_missing"))  # noqa: E731
    assert gaps() == [(3, 4), (7, 8)]
    first_detected = SequenceGap.objects.get(first_missing=7).detected_at

    stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(3), seq=3, lines=(("SKU-JUGO", 1),)))
    sales_reconcile()
    assert gaps() == [(4, 4), (7, 8)]
    assert SequenceGap.objects.get(first_missing=7).detected_at == first_detected

    for seq in (4, 7, 8):
        stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(seq), seq=seq, lines=(("SKU-JUGO", 1),)))
    sales_reconcile()
    assert gaps() == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sequence_gaps_match_the_stored_numbering_whatever_the_arrival(demo, at, data):
    seqs = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=25, unique=True), label="seqs")
    order = data.draw(st.permutations(seqs), label="arrival")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=5), label="cuts"))
    with transaction.atomic():
        for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
            chunk = [
                stored_sale_create(
                    SaleSpec(terminal="N1-CAJA-01", occurred_at=at(seq), seq=seq, lines=(("SKU-JUGO", 1),))
                )
                for seq in order[a:b]
            ]
            sales_reconcile(sale_ids=[sale.pk for sale in chunk])
        stored = sorted(seqs)
        expected = [(x + 1, y - 1) for x, y in pairwise(stored) if y > x + 1]
        assert list(SequenceGap.objects.order_by("first_missing").values_list("first_missing", "last_missing")) == (
            expected
        )
        transaction.set_rollback(True)


def test_ingest_time_flags_are_never_touched(demo, at):
    sale = stored_sale_create(
        SaleSpec(terminal="N1-CAJA-01", occurred_at=at(5), customer="C-000123", lines=(("SKU-GASEOSA", 1),))
    )
    SaleFlag.objects.create(sale=sale, code=FlagCode.BLOCKED_PRODUCT, detail={"sku": "SKU-GASEOSA"})
    sales_reconcile()
    assert list(SaleFlag.objects.filter(sale=sale).values_list("code", flat=True)) == [FlagCode.BLOCKED_PRODUCT]


def _effects() -> dict:
    return {
        "stock_movements": StockMovement.objects.filter(kind="sale").count(),
        "balance_movements": BalanceMovement.objects.filter(kind="sale").count(),
        "unit_movements": UnitMovement.objects.filter(kind="sale").count(),
        "stock": dict(NodeStock.objects.values_list("pk", "quantity")),
        "balances": dict(Customer.objects.values_list("pk", "balance")),
        "units": dict(UnitBalance.objects.values_list("pk", "quantity")),
        "comandas": Comanda.objects.count(),
        "flags": set(SaleFlag.objects.values_list("sale_id", "code")),
        "events": set(NegativeStockEvent.objects.values_list("node_id", "product_id", "starting_sale_id")),
        "unreconciled": Sale.objects.filter(reconciled_at__isnull=True).count(),
    }


def _mixed_sales(at) -> list[Sale]:
    return stored_sales_create(
        [
            SaleSpec(
                terminal="N1-CAJA-01",
                occurred_at=at(10 + i),
                customer="C-000200" if i % 2 else "C-000123",
                lines=(("SKU-SANDWICH", 1), ("SKU-ALMUERZO", 1, "0.00")),
                payments=(("paygo", "6500.00"), ("units", "1", "ALMUERZO")) if i % 2 == 0 else (("paygo", "6500.00"),),
            )
            for i in range(6)
        ]
    )


def test_reconciling_twice_or_a_chunk_again_leaves_one_set_of_effects(demo, at):
    sales = _mixed_sales(at)
    sales_reconcile()
    once = _effects()
    assert once["stock_movements"] == 6
    assert once["unreconciled"] == 0

    assert sales_reconcile() == 0
    assert sales_reconcile(sale_ids=[s.pk for s in sales]) == 0
    # Even a second worker that read the batch before the first committed adds nothing.
    with transaction.atomic():
        sales_chunk_reconcile(sale_ids=[s.pk for s in sales])
    assert _effects() == once


def test_a_crash_mid_reconcile_rolls_back_and_the_retry_applies_everything_once(demo, at, monkeypatch):
    _mixed_sales(at)
    before = _effects()

    def crash(**kwargs):
        raise RuntimeError("worker killed")

    # The crash comes after stock, balances, units, flags and comandas were written.
    monkeypatch.setattr(reconcile_module, "sequence_gaps_recompute", crash)
    with pytest.raises(RuntimeError):
        sales_reconcile()
    assert _effects() == before

    monkeypatch.undo()
    assert sales_reconcile() == 6
    after = _effects()
    assert after["stock_movements"] == 6
    assert after["balance_movements"] == 6
    assert after["unit_movements"] == 3
    assert after["comandas"] == 6
    assert after["unreconciled"] == 0
    assert sales_reconcile() == 0
    assert _effects() == after


def test_task_enqueue_on_commit_and_sweep(demo, at, django_capture_on_commit_callbacks, monkeypatch):
    sale = stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(1), lines=(("SKU-AGUA", 1),)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.sales_reconcile_enqueue(sale_ids=[sale.pk])
    assert len(callbacks) == 1
    sale.refresh_from_db()
    assert sale.reconciled_at is not None

    # Broker down: enqueueing logs and never raises; the sweep catches up later.
    def broker_down(*args, **kwargs):
        raise ConnectionError("redis unreachable")

    late = stored_sale_create(
        SaleSpec(
            terminal="N1-CAJA-02",
            occurred_at=at(2),
            lines=(("SKU-AGUA", 1),),
            received_at=timezone.now() - timedelta(minutes=2),
        )
    )
    fresh = stored_sale_create(SaleSpec(terminal="N1-CAJA-02", occurred_at=at(3), lines=(("SKU-AGUA", 1),)))
    monkeypatch.setattr(tasks.sales_reconcile, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sales_reconcile_enqueue(sale_ids=[late.pk, fresh.pk])
    assert Sale.objects.filter(reconciled_at__isnull=True).count() == 2
    monkeypatch.undo()

    sweep_published = []
    monkeypatch.setattr(tasks, "_publish", sweep_published.extend)
    assert tasks.unreconciled_sales_sweep.delay().get() == 1  # only the one older than a minute
    assert sweep_published == [str(late.pk)]
    monkeypatch.undo()

    # The task it enqueues fills its chunk with the other waiting sale as well.
    assert tasks.sales_reconcile.delay(sale_ids=sweep_published).get() == 2
    late.refresh_from_db()
    fresh.refresh_from_db()
    assert late.reconciled_at is not None
    assert fresh.reconciled_at is not None
    assert stock("SKU-AGUA") == Decimal("27")


def test_the_task_fills_a_small_chunk_and_the_service_alone_does_not(demo, at):
    sales = [
        stored_sale_create(SaleSpec(terminal="N1-CAJA-01", seq=i, occurred_at=at(i), lines=(("SKU-AGUA", 1),)))
        for i in range(1, 5)
    ]
    assert sales_reconcile(sale_ids=[sales[0].pk]) == 1
    assert Sale.objects.filter(reconciled_at__isnull=True).count() == 3
    assert sales_reconcile(sale_ids=[sales[3].pk], chunk_size=2, fill=True) == 2
    # the given sale plus the oldest waiting one
    assert set(Sale.objects.filter(reconciled_at__isnull=True).values_list("pk", flat=True)) == {sales[2].pk}


def test_reconcile_of_500_sales_costs_a_bounded_number_of_queries(demo, at, django_assert_max_num_queries):
    terminals = ["N1-CAJA-01", "N1-CAJA-02", "N1-KIOSCO-01"]
    customers = list(Customer.objects.filter(institution__code="COL-SANJOSE").values_list("code", flat=True))
    skus = ["SKU-EMPANADA", "SKU-SANDWICH", "SKU-GASEOSA", "SKU-AREPA", "SKU-JUGO"]
    specs = [
        SaleSpec(
            terminal=terminals[i % 3],
            occurred_at=at(i % 600),
            customer=customers[i % len(customers)],
            lines=((skus[i % 5], 1), (skus[(i + 1) % 5], 2)),
            offline=i % 7 != 0,
        )
        for i in range(500)
    ]
    sales = stored_sales_create(specs)
    with django_assert_max_num_queries(40) as captured:
        assert sales_reconcile(sale_ids=[s.pk for s in sales]) == 500
    print(f"reconcile of 500 sales: {len(captured.captured_queries)} queries")
    assert Comanda.objects.count() == 400  # four sales in five have an arepa or a sandwich
    assert Sale.objects.filter(reconciled_at__isnull=True).count() == 0


def test_a_chunk_reads_its_customers_once_and_writes_them_once(demo, at, django_assert_max_num_queries):
    # Balance and unit payments, overdraft and daily maximum: every one of them needs the
    # chunk's customers (institution for the feed, limits for the walks), read once in
    # the statement that locks them; balances and units then take one feed sequence and
    # one write of the customers, a customer whose units alone changed included.
    def sale(minute, customer, payments):
        return SaleSpec(
            terminal="N1-CAJA-01",
            occurred_at=at(10 + minute),
            customer=customer,
            lines=(("SKU-EMPANADA", 1), ("SKU-ALMUERZO", 1, "0.00")),
            payments=payments,
        )

    both = (("paygo", "3500.00"), ("units", "1", "ALMUERZO"))
    sales = stored_sales_create(
        [
            sale(0, "C-000123", both),
            sale(1, "C-000200", both),
            sale(2, "C-000123", both),
            sale(3, "C-000201", (("cash", "3500.00"), ("units", "1", "ALMUERZO"))),
        ]
    )
    seqs_before = dict(Customer.objects.values_list("code", "change_seq"))
    with django_assert_max_num_queries(40) as captured:
        assert sales_reconcile(sale_ids=[s.pk for s in sales]) == 4
    statements = [query["sql"] for query in captured.captured_queries]
    customer_reads = [sql for sql in statements if sql.startswith('SELECT "billing_customer".')]
    assert len(customer_reads) == 1, customer_reads
    assert len([sql for sql in statements if sql.startswith('UPDATE "billing_customer"')]) == 1
    assert len([sql for sql in statements if sql.startswith('UPDATE "billing_balancefeed"')]) == 1

    assert balance("C-000123") == Decimal("5000.00")  # 12000 - 2 × 3500
    assert UnitBalance.objects.get(customer__code="C-000123", unit_type="ALMUERZO").quantity == 10
    seqs = dict(Customer.objects.values_list("code", "change_seq"))
    changed = {"C-000123", "C-000200", "C-000201"}
    assert {code for code in seqs if seqs[code] != seqs_before[code]} == changed
    assert len({seqs[code] for code in changed}) == 1
    assert min(seqs[code] for code in changed) > max(seqs_before.values())


# The scheduler closes "old" connections, which inside a test transaction means ours.
@pytest.mark.django_db(transaction=True)
def test_beat_schedule_is_installed_by_the_database_scheduler():
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from paygo.celery import app

    DatabaseScheduler(app=app)
    tasks_installed = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"sales.tasks.unreconciled_sales_sweep", "inventory.tasks.ledgers_verify"} <= tasks_installed


def test_unknown_ids_and_an_empty_database_are_harmless(db):
    assert sales_reconcile(sale_ids=[uuid.uuid4()]) == 0
    assert sales_reconcile() == 0
    assert Terminal.objects.count() == 0


def test_flags_apply_refuses_codes_it_does_not_own_or_gets_twice():
    from sales.reconcile_flags import FlagEvaluation, sale_flags_apply

    # Refused before anything is read or written, evaluated sales or not.
    with pytest.raises(ValueError, match="not a reconciliation flag"):
        sale_flags_apply(evaluations=[FlagEvaluation(code=FlagCode.BLOCKED_PRODUCT)])
    with pytest.raises(ValueError, match="evaluated twice"):
        sale_flags_apply(
            evaluations=[FlagEvaluation(code=FlagCode.NEGATIVE_STOCK), FlagEvaluation(code=FlagCode.NEGATIVE_STOCK)]
        )
