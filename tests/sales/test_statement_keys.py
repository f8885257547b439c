"""Statement keys (paygo.statement_keys): the references of the rows ingest and reconcile
insert by the thousand are enforced by the database once per statement instead of once
per row, and refuse what a foreign key refuses, including under concurrency."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, connections, transaction

from inventory.models import Product
from nodes.models import Node
from paygo.bulk_insert import columns_insert
from sales.models import Sale, SaleLine
from tests.sales.pg_locks import lock_waiters_wait
from tests.sales.stored_sales import SaleSpec, stored_sale_create

pytestmark = pytest.mark.postgres

# (name, child table, column, parent table): the migrations' keys (sales 0009, inventory
# 0004, billing 0007).
KEYS = [
    ("saleline_sale_key", "sales_saleline", "sale_id", "sales_sale"),
    ("saleline_product_key", "sales_saleline", "product_id", "inventory_product"),
    ("payment_sale_key", "sales_payment", "sale_id", "sales_sale"),
    ("saleflag_sale_key", "sales_saleflag", "sale_id", "sales_sale"),
    ("sale_customer_key", "sales_sale", "customer_id", "billing_customer"),
    ("sale_batch_key", "sales_sale", "batch_id", "sales_uploadbatch"),
    ("stockmove_node_key", "inventory_stockmovement", "node_id", "nodes_node"),
    ("stockmove_product_key", "inventory_stockmovement", "product_id", "inventory_product"),
    ("stockmove_sale_line_key", "inventory_stockmovement", "sale_line_id", "sales_saleline"),
    ("balmove_customer_key", "billing_balancemovement", "customer_id", "billing_customer"),
    ("balmove_payment_key", "billing_balancemovement", "payment_id", "sales_payment"),
    ("unitmove_customer_key", "billing_unitmovement", "customer_id", "billing_customer"),
    ("unitmove_payment_key", "billing_unitmovement", "payment_id", "sales_payment"),
    ("sale_terminal_node_fk", "sales_sale", ("terminal_id", "node_id"), "nodes_terminal"),
    ("sale_node_institution_fk", "sales_sale", ("node_id", "institution_id"), "nodes_node"),
]


@pytest.fixture
def sale(demo, at):
    return stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-AGUA", 1),)))


def _line(sale_id, product_id, position: int) -> dict:
    return {
        "sale_id": sale_id,
        "position": position,
        "product_id": product_id,
        "quantity": Decimal("1"),
        "unit_price": Decimal("1000"),
        "total": Decimal("1000"),
    }


def _lines_insert(*lines: dict) -> None:
    columns_insert(SaleLine, {name: [line[name] for line in lines] for name in lines[0]})


@pytest.mark.django_db
def test_each_key_replaces_its_foreign_key_with_its_four_triggers():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) WHERE c.contype = 'f'"
        )
        foreign = set(cursor.fetchall())
        cursor.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal")
        triggers = set(cursor.fetchall())
    for name, child, columns, parent in KEYS:
        for column in (columns,) if isinstance(columns, str) else columns:
            assert (child, column) not in foreign, name
        assert {(child, f"{name}_inserted"), (child, f"{name}_changed")} <= triggers, name
        assert {(parent, f"{name}_deleted"), (parent, f"{name}_rekeyed")} <= triggers, name


@pytest.mark.django_db
def test_rows_referencing_a_missing_sale_or_product_are_refused_with_their_statement(sale):
    water = Product.objects.get(sku="SKU-AGUA")
    positions = set(SaleLine.objects.filter(sale=sale).values_list("position", flat=True))
    _lines_insert(_line(sale.pk, water.pk, 10), _line(sale.pk, water.pk, 11))  # both exist
    with pytest.raises(IntegrityError, match="saleline_sale_key"), transaction.atomic():
        _lines_insert(_line(sale.pk, water.pk, 12), _line(uuid.uuid4(), water.pk, 1))
    with pytest.raises(IntegrityError, match="saleline_product_key"), transaction.atomic():
        _lines_insert(_line(sale.pk, water.pk, 12), _line(sale.pk, 10**9, 13))
    # The whole statement is refused, not only the bad row.
    assert set(SaleLine.objects.filter(sale=sale).values_list("position", flat=True)) == positions | {10, 11}


@pytest.mark.django_db
def test_a_sale_inserted_with_a_terminal_of_another_node_is_refused(sale):
    # The composite key (terminal, node) -> terminal (id, node), checked per statement.
    values = Sale.objects.filter(pk=sale.pk).values()[0]
    values.update(id=uuid.uuid4(), seq=values["seq"] + 1000)
    with pytest.raises(IntegrityError, match="sale_terminal_node_fk"), transaction.atomic():
        columns_insert(
            Sale, {name: [value] for name, value in {**values, "node_id": Node.objects.get(code="N2").pk}.items()}
        )
    columns_insert(Sale, {name: [value] for name, value in values.items()})  # its own node is fine
    assert Sale.objects.filter(pk=values["id"]).exists()


@pytest.mark.django_db
def test_changing_a_reference_to_a_missing_row_is_refused(sale):
    line = SaleLine.objects.get(sale=sale)
    with pytest.raises(IntegrityError, match="saleline_product_key"), transaction.atomic():
        SaleLine.objects.filter(pk=line.pk).update(product_id=10**9)
    juice = Product.objects.exclude(pk=line.product_id).filter(institution=sale.institution).first()
    SaleLine.objects.filter(pk=line.pk).update(product=juice)  # an existing one is fine
    line.refresh_from_db()
    assert line.product_id == juice.pk


@pytest.mark.django_db
def test_a_referenced_row_cannot_be_deleted_or_change_its_key(sale):
    water = Product.objects.get(sku="SKU-AGUA")
    with connection.cursor() as cursor:
        with pytest.raises(IntegrityError, match="saleline_product_key"), transaction.atomic():
            cursor.execute("DELETE FROM inventory_product WHERE id = %s", [water.pk])
        with pytest.raises(IntegrityError, match="saleline_product_key"), transaction.atomic():
            cursor.execute("UPDATE inventory_product SET id = id + 1000000 WHERE id = %s", [water.pk])
        with pytest.raises(IntegrityError, match="violates foreign key constraint"), transaction.atomic():
            cursor.execute("DELETE FROM sales_sale WHERE id = %s", [sale.pk])
    # A row nothing references may go.
    spare = Product.objects.create(institution=water.institution, sku="SKU-SPARE", name="Spare", price=Decimal("1"))
    spare.delete()


def _in_thread(work, started: threading.Event, release: threading.Event, failures: list) -> threading.Thread:
    """Run ``work()`` in a transaction of its own connection, signal ``started``, and hold
    the transaction open until ``release``."""

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                started.set()
                release.wait(timeout=10)
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            started.set()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_delete_waits_for_the_transaction_referencing_the_row_then_is_refused(sale):
    spare = Product.objects.create(institution=sale.institution, sku="SKU-SPARE", name="Spare", price=Decimal("1000"))
    referenced, release, inserter_failures = threading.Event(), threading.Event(), []
    inserter = _in_thread(lambda: _lines_insert(_line(sale.pk, spare.pk, 2)), referenced, release, inserter_failures)
    deleter_failures: list[BaseException] = []
    try:
        assert referenced.wait(timeout=10)
        assert not inserter_failures, inserter_failures
        deleter = _in_thread(
            lambda: Product.objects.filter(pk=spare.pk)._raw_delete(connection.alias),
            threading.Event(),
            threading.Event(),
            deleter_failures,
        )
        assert lock_waiters_wait() == 1  # the delete waits for the inserter's KEY SHARE
    finally:
        release.set()
        inserter.join(timeout=15)
    deleter.join(timeout=15)
    assert not inserter_failures, inserter_failures
    assert len(deleter_failures) == 1
    assert "saleline_product_key" in str(deleter_failures[0])
    assert Product.objects.filter(pk=spare.pk).exists()
    assert SaleLine.objects.filter(sale=sale, product=spare).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_insert_waits_for_the_transaction_deleting_its_parent_then_is_refused(sale):
    spare = Product.objects.create(institution=sale.institution, sku="SKU-SPARE", name="Spare", price=Decimal("1000"))
    deleted, release, deleter_failures = threading.Event(), threading.Event(), []
    deleter = _in_thread(
        lambda: Product.objects.filter(pk=spare.pk)._raw_delete(connection.alias), deleted, release, deleter_failures
    )
    inserter_failures: list[BaseException] = []
    try:
        assert deleted.wait(timeout=10)
        assert not deleter_failures, deleter_failures
        inserter = _in_thread(
            lambda: _lines_insert(_line(sale.pk, spare.pk, 2)), threading.Event(), threading.Event(), inserter_failures
        )
        assert lock_waiters_wait() == 1  # the insert's KEY SHARE waits for the delete
    finally:
        release.set()
        deleter.join(timeout=15)
    inserter.join(timeout=15)
    assert not deleter_failures, deleter_failures
    assert len(inserter_failures) == 1
    assert "saleline_product_key" in str(inserter_failures[0])
    assert not Product.objects.filter(pk=spare.pk).exists()
    assert not SaleLine.objects.filter(product_id=spare.pk).exists()
