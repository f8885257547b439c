"""Row locks held by reconciliation and online sales must not block the foreign-key checks
other transactions run at COMMIT (PostgreSQL's ``SELECT … FOR KEY SHARE``).

Found by the simulator's end-to-end run: an online sale (holding its customer, committing
a sale that references the node) and a reconcile (holding the node, waiting for that
customer) deadlocked while reconcile locked nodes with a plain ``FOR UPDATE``.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.utils import OperationalError
from django.utils import timezone

from billing.models import Customer
from inventory.models import Product
from nodes.models import Node
from sales.locks import sale_rows_lock
from sales.reconcile import sales_reconcile
from sales.reconcile_locks import customers_lock, nodes_lock
from tests.sales.pg_locks import lock_waiters_wait
from tests.sales.stored_sales import SaleSpec, stored_sale_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _key_share_while_locked(lock, table: str, pk: int) -> None:
    """Hold ``lock()`` in one transaction; from another, take what a foreign-key check
    takes on the same row. Raises OperationalError if the check has to wait."""
    held, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                lock()
                held.set()
                release.wait(timeout=10)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            held.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=10)
        assert not failures, failures
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR KEY SHARE', [pk])
    finally:
        release.set()
        thread.join(timeout=15)
    assert not failures, failures


def test_reconcile_node_lock_lets_foreign_key_checks_through(demo):
    node = Node.objects.get(code="N1")

    _key_share_while_locked(lambda: nodes_lock(node_ids=[node.pk]), Node._meta.db_table, node.pk)


def test_reconcile_customer_lock_lets_foreign_key_checks_through(demo):
    customer = Customer.objects.order_by("pk").first()

    _key_share_while_locked(lambda: customers_lock(customer_ids=[customer.pk]), Customer._meta.db_table, customer.pk)


def test_online_sale_customer_lock_lets_foreign_key_checks_through(demo):
    customer = Customer.objects.order_by("pk").first()
    node = Node.objects.get(code="N1")

    _key_share_while_locked(
        lambda: sale_rows_lock(customer_id=customer.pk, node_id=node.pk, product_ids=[]),
        Customer._meta.db_table,
        customer.pk,
    )


def test_the_locks_still_serialize_each_other(demo):
    """The weaker lock mode still makes a second reconcile of the node wait."""
    node = Node.objects.get(code="N1")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                nodes_lock(node_ids=[node.pk])
                held.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            with pytest.raises(OperationalError):
                nodes_lock(node_ids=[node.pk])
    finally:
        release.set()
        thread.join(timeout=15)


def test_reconcile_and_an_online_sale_take_customer_and_stock_rows_in_one_order(demo):
    """An online sale locks its customer, then the node-stock rows of what it sells
    (``sales.locks``). A chunk reconciling an offline sale of that customer and product
    that waits for the customer must not already hold those stock rows: the online sale
    would then wait on the chunk while the chunk waits on it, and PostgreSQL would abort
    one of them as a deadlock."""
    node = Node.objects.get(code="N1")
    customer = Customer.objects.get(institution=node.institution, code="C-000123")
    empanada = Product.objects.get(institution=node.institution, sku="SKU-EMPANADA")
    offline = stored_sale_create(
        SaleSpec(
            terminal="N1-CAJA-01",
            occurred_at=timezone.now() - timedelta(minutes=5),
            customer="C-000123",
            lines=(("SKU-EMPANADA", 1),),
            payments=(("paygo", "3500.00"),),
        )
    )
    customer_held, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def online_sale() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '10s'")
                sale_rows_lock(customer_id=customer.pk, node_id=node.pk, product_ids=[])
                customer_held.set()
                go.wait(timeout=10)
                sale_rows_lock(customer_id=None, node_id=node.pk, product_ids=[empanada.pk])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            customer_held.set()
            connections.close_all()

    def reconcile() -> None:
        try:
            sales_reconcile(sale_ids=[offline.pk])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    online = threading.Thread(target=online_sale)
    online.start()
    assert customer_held.wait(timeout=10)
    chunk = threading.Thread(target=reconcile)
    chunk.start()
    try:
        assert lock_waiters_wait() == 1, "the chunk waits for the customer the online sale holds"
    finally:
        go.set()
        online.join(timeout=30)
        chunk.join(timeout=30)
    assert not failures, failures
    offline.refresh_from_db()
    assert offline.reconciled_at is not None
