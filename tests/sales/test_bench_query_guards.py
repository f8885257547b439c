"""Query-count guards for the hot paths tuned with ``bench/run.py`` (no timings here).

Each guard pins a cost that must not grow with the number of rows: one statement per
table for the ingest insert, one UPDATE for a ledger's materialized values whatever the
number of customers or products, and reconcile chunks taken in time of sale.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.ledger import balance_movements_post, unit_movements_post
from billing.models import BalanceMovement, BalanceMovementKind, Customer, UnitBalance, UnitMovement, UnitMovementKind
from inventory.ledger import stock_movements_post
from inventory.models import NodeStock, Product, StockMovement, StockMovementKind
from nodes.models import Node
from paygo.bulk_insert import array_param, columns_insert, rows_insert, values_plain
from sales.models import FlagCode, Payment, Sale, SaleFlag, SaleLine
from sales.reconcile_locks import unreconciled_sales_lock
from tests.sales.stored_sales import SaleSpec, stored_sales_create

pytestmark = pytest.mark.django_db


def _topups(customers) -> list[BalanceMovement]:
    return [
        BalanceMovement(
            customer=c, kind=BalanceMovementKind.TOPUP, amount=Decimal("100.00"), occurred_at=timezone.now()
        )
        for c in customers
    ]


def _queries_of(django_assert_max_num_queries, action) -> int:
    with django_assert_max_num_queries(1000) as captured:
        action()
    return len(captured.captured_queries)


def test_rows_insert_writes_a_thousand_lines_in_one_statement(demo, at, django_assert_num_queries):
    sale = stored_sales_create([SaleSpec(terminal="N1-CAJA-01", occurred_at=at(1), lines=(("SKU-JUGO", 1),))])[0]
    product = Product.objects.get(sku="SKU-JUGO", institution__code="COL-SANJOSE")
    lines = [
        SaleLine(
            sale_id=sale.pk,
            position=i,
            product_id=product.pk,
            quantity=Decimal("1.5"),
            unit_price=Decimal("3000.00"),
            total=Decimal("4500.00"),
        )
        for i in range(1, 1001)
    ]
    with django_assert_num_queries(1):
        rows = rows_insert(SaleLine, lines, fields=["sale", "position", "product", "quantity", "unit_price", "total"])
    assert len(rows) == 1000
    stored = SaleLine.objects.filter(sale=sale, position__gte=1)
    assert stored.count() == 1000
    assert stored.aggregate(q=Sum("quantity"), t=Sum("total")) == {"q": Decimal("1500"), "t": Decimal("4500000")}


def test_rows_insert_skips_conflicts_and_returns_only_rows_inserted(demo, at):
    sale = stored_sales_create([SaleSpec(terminal="N1-CAJA-01", occurred_at=at(1), lines=(("SKU-JUGO", 1),))])[0]
    product = Product.objects.get(sku="SKU-JUGO", institution__code="COL-SANJOSE")
    lines = [
        SaleLine(sale_id=sale.pk, position=p, product_id=product.pk, quantity=1, unit_price=1, total=1) for p in (0, 5)
    ]
    rows = rows_insert(
        SaleLine, lines, fields=["sale", "position", "product", "quantity", "unit_price", "total"],
        returning=("position",), on_conflict_do_nothing=True,
    )  # fmt: skip
    assert rows == [(5,)]  # position 0 is the sale's own line


def test_balance_post_costs_the_same_queries_for_one_or_every_customer(demo, django_assert_max_num_queries):
    customers = list(Customer.objects.filter(institution__code="COL-SANJOSE").order_by("pk"))
    assert len(customers) > 3
    one = _queries_of(django_assert_max_num_queries, lambda: balance_movements_post(movements=_topups(customers[:1])))
    many = _queries_of(django_assert_max_num_queries, lambda: balance_movements_post(movements=_topups(customers)))
    assert many == one
    for customer in Customer.objects.filter(pk__in=[c.pk for c in customers]):
        assert customer.balance == customer.balance_movements.aggregate(s=Sum("amount"))["s"]


def test_unit_post_costs_the_same_queries_for_one_or_every_customer(demo, django_assert_max_num_queries):
    customers = list(Customer.objects.filter(institution__code="COL-SANJOSE").order_by("pk"))

    def post(chosen):
        return lambda: unit_movements_post(
            movements=[
                UnitMovement(
                    customer=c,
                    unit_type="ALMUERZO",
                    kind=UnitMovementKind.PURCHASE,
                    quantity=3,
                    occurred_at=timezone.now(),
                )
                for c in chosen
            ]
        )

    post(customers)()  # every customer has a unit balance row from here on
    assert _queries_of(django_assert_max_num_queries, post(customers[:1])) == _queries_of(
        django_assert_max_num_queries, post(customers)
    )
    for units in UnitBalance.objects.filter(customer__in=customers):
        ledger = UnitMovement.objects.filter(customer=units.customer, unit_type=units.unit_type).aggregate(
            s=Sum("quantity")
        )["s"]
        assert units.quantity == ledger


def test_stock_post_costs_the_same_queries_for_one_or_every_product(demo, django_assert_max_num_queries):
    node = Node.objects.get(code="N1")
    products = list(Product.objects.filter(institution=node.institution, tracks_inventory=True).order_by("pk"))
    assert len(products) > 1

    def post(chosen):
        return lambda: stock_movements_post(
            movements=[
                StockMovement(
                    node=node,
                    product=p,
                    kind=StockMovementKind.RECEIPT,
                    quantity=Decimal("2.5"),
                    occurred_at=timezone.now(),
                )
                for p in chosen
            ]
        )

    assert _queries_of(django_assert_max_num_queries, post(products[:1])) == _queries_of(
        django_assert_max_num_queries, post(products)
    )
    for stock in NodeStock.objects.filter(node=node, product__in=products):
        ledger = StockMovement.objects.filter(node=node, product=stock.product).aggregate(s=Sum("quantity"))["s"]
        assert stock.quantity == ledger


def test_reconcile_locks_the_oldest_sales_first_in_one_query(demo, at, django_assert_num_queries):
    specs = [SaleSpec(terminal="N1-CAJA-01", occurred_at=at(60 - i), lines=(("SKU-JUGO", 1),)) for i in range(30)]
    sales = stored_sales_create(specs)
    oldest = sorted(sales, key=lambda s: s.occurred_at)[:10]
    with transaction.atomic(), django_assert_num_queries(1):
        locked = unreconciled_sales_lock(sale_ids=[s.pk for s in sales], limit=10)
    assert locked == sorted(s.pk for s in oldest)


def test_snapshot_pages_by_row_keyset_once_each_with_a_fixed_query_count(demo, django_assert_max_num_queries):
    from billing.selectors import customer_balances_page

    institution_id = Customer.objects.filter(institution__code="COL-SANJOSE").values_list("institution_id", flat=True)[
        0
    ]
    # Customers sharing one change_seq (as after a bulk import): the keyset must walk by id.
    Customer.objects.filter(institution_id=institution_id).update(change_seq=0)
    seen, cursor, pages = [], None, 0
    while True:
        with django_assert_max_num_queries(4):  # feed row, customers, blocks, units
            page = customer_balances_page(institution_id=institution_id, cursor=cursor, limit=2)
        seen.extend(c["code"] for c in page.customers)
        cursor, pages = page.cursor, pages + 1
        assert page.full
        if not page.has_more:
            break
    codes = list(Customer.objects.filter(institution_id=institution_id).order_by("pk").values_list("code", flat=True))
    assert seen == codes
    assert pages == (len(codes) + 1) // 2 or pages == len(codes) // 2 + 1


def test_columns_insert_stores_strings_that_need_quoting_exactly(demo, at, django_assert_num_queries):
    # On PostgreSQL each column travels as one array literal built by paygo.bulk_insert:
    # quotes, backslashes, commas, braces, "NULL" and the empty string must come back as sent.
    sale = stored_sales_create([SaleSpec(terminal="N1-CAJA-01", occurred_at=at(1), lines=(("SKU-JUGO", 1),))])[0]
    texts = ['a"b', "back\\slash", "x,y", "{z}", "NULL", "", "ñandú ü", " spaced "]
    positions = list(range(10, 10 + len(texts)))
    with django_assert_num_queries(1):
        columns_insert(
            Payment,
            {
                "sale": [sale.pk] * len(texts),
                "position": positions,
                "method": ["cash"] * len(texts),
                "amount": [Decimal("1.50")] * len(texts),
                "unit_type": texts,
            },
        )
    stored = dict(Payment.objects.filter(sale=sale, position__gte=10).values_list("position", "unit_type"))
    assert [stored[p] for p in positions] == texts


def test_columns_insert_stores_json_and_choices_exactly(demo, at, django_assert_num_queries):
    # JSON details and TextChoices members travel as quoted text in the array literals too:
    # nested quotes, backslashes, braces, non-ASCII and JSON null must come back as sent.
    sales = stored_sales_create(
        [SaleSpec(terminal="N1-CAJA-01", occurred_at=at(i), lines=(("SKU-JUGO", 1),)) for i in range(3)]
    )
    details = [
        {"note": 'dijo "hola" \\ {y} [z]', "n": 1.5, "none": None},
        {"lista": ["a,b", "ñandú ü 😀", "\u2028"], "vacío": {}},
        [],
    ]
    with django_assert_num_queries(1):
        columns_insert(
            SaleFlag,
            {
                "sale": [sale.pk for sale in sales],
                "code": [FlagCode.CLOCK_SKEW] * 3,
                "detail": details,
                "created_at": [timezone.now()] * 3,
            },
        )
    stored = dict(SaleFlag.objects.filter(sale__in=sales).values_list("sale_id", "detail"))
    assert [stored[sale.pk] for sale in sales] == details
    assert set(SaleFlag.objects.filter(sale__in=sales).values_list("code", flat=True)) == {"clock_skew"}


def test_columns_insert_takes_uuids_and_their_canonical_texts(demo, at, django_assert_num_queries):
    # A sale-id column may hold UUIDs or their str() text (how ingest holds a batch's ids),
    # and a nullable one None as well: each row refers to the sale it names.
    sales = stored_sales_create(
        [SaleSpec(terminal="N1-CAJA-01", occurred_at=at(i), lines=(("SKU-JUGO", 1),)) for i in range(3)]
    )
    ids = [sales[0].pk, str(sales[1].pk), str(sales[2].pk)]
    with django_assert_num_queries(1):
        columns_insert(
            SaleFlag,
            {
                "sale": ids,
                "code": [FlagCode.CLOCK_SKEW] * 3,
                "detail": [{}] * 3,
                "created_at": [timezone.now()] * 3,
            },
        )
    assert set(SaleFlag.objects.filter(code="clock_skew").values_list("sale_id", flat=True)) == {s.pk for s in sales}


def test_only_canonical_uuid_texts_skip_djangos_preparation():
    field = SaleLine._meta.get_field("sale")
    text = str(uuid.uuid4())
    assert values_plain(field, [uuid.uuid4(), text, None])
    for other in (
        text.upper(),
        text.replace("-", ""),
        "{" + text + "}",
        "urn:uuid:" + text,
        text + ",",
        text + "," + text,
        "",
    ):
        assert not values_plain(field, [text, other])
    assert not values_plain(Payment._meta.get_field("unit_type"), [uuid.uuid4()])


def test_array_param_writes_uuids_and_plain_strings_as_postgresql_reads_them():
    first, second = uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)
    assert array_param([first, second]) == "{" + f"{1:032x},{2**128 - 1:032x}" + "}"
    assert array_param([first, None]) == "{" + f"{1:032x}" + ",NULL}"
    assert array_param(["cash", "NULL", "", "x,y", "{z}"]) == '{"cash","NULL","","x,y","{z}"}'
    assert array_param(['a"b', "c"]) == '{"a\\"b","c"}'
    assert array_param(["back\\slash"]) == '{"back\\\\slash"}'


def test_any_lookup_reads_a_list_of_ids_in_one_query(demo, at, django_assert_num_queries):
    sales = stored_sales_create(
        [SaleSpec(terminal="N1-CAJA-01", occurred_at=at(i), lines=(("SKU-JUGO", 1),)) for i in range(3)]
    )
    wanted = [sales[0].pk, sales[2].pk, uuid.uuid4(), None]
    with django_assert_num_queries(1) as captured:
        found = set(Sale.objects.filter(pk__any=wanted).values_list("pk", flat=True))
    assert found == {sales[0].pk, sales[2].pk}
    # Ids as text (not UUIDs) match as well: canonical texts as they are, any other
    # spelling through Django's own preparation of each value.
    assert set(Sale.objects.filter(pk__any=[str(sales[1].pk)]).values_list("pk", flat=True)) == {sales[1].pk}
    assert set(Sale.objects.filter(pk__any=[sales[1].pk.hex.upper()]).values_list("pk", flat=True)) == {sales[1].pk}
    assert set(SaleLine.objects.filter(sale_id__any=[str(sales[1].pk)]).values_list("sale_id", flat=True)) == {
        sales[1].pk
    }
    if connection.vendor == "postgresql":
        assert "= ANY(" in captured.captured_queries[0]["sql"]
    assert not Sale.objects.filter(pk__any=[]).exists()
    codes = set(Customer.objects.filter(code__any=["nobody", *Customer.objects.values_list("code", flat=True)[:2]]))
    assert len(codes) == 2
    # A value longer than the column (64) never matches a stored code equal to its start.
    Customer.objects.filter(pk=Customer.objects.values_list("pk", flat=True).first()).update(code="C" * 64)
    assert Customer.objects.filter(code__any=["C" * 64]).count() == 1
    assert not Customer.objects.filter(code__any=["C" * 65]).exists()
