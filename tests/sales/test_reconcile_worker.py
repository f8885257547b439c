"""End to end on real PostgreSQL, Redis and `celery worker` processes: reconciliation
through the broker, and a worker killed (SIGKILL) in the middle of a large batch."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from billing.models import BalanceMovement, Customer
from inventory.models import Product, StockMovement
from inventory.verification import ledgers_verify
from sales.models import Comanda, Payment, Sale, SaleLine
from tests.reliability.stack import solo_worker_argv
from tests.sales.stored_sales import SaleSpec, stored_sales_create


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def broker_url() -> str:
    url = os.environ["PAYGO_TEST_REDIS_URL"] + "/3"
    import redis

    redis.Redis.from_url(url).flushdb()  # only our own test database number
    return url


@pytest.fixture
def publisher(broker_url):
    app = Celery("paygo-test-publisher", broker=broker_url)
    app.conf.task_serializer = "json"
    yield app
    app.close()


class Worker:
    """A `celery -A paygo worker --pool=solo` process on the test database; stopped by PID."""

    def __init__(self, broker_url: str, log: Path) -> None:
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": broker_url,
            "DJANGO_SETTINGS_MODULE": "paygo.test_settings",
            "PAYGO_LOG_LEVEL": "INFO",
        }
        self.process = subprocess.Popen(  # the worker itself: its PID is the one we stop
            solo_worker_argv(log=log, name="reconcile-test"),
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and "ready." in log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"celery worker did not start:\n{log.read_text(errors='replace') if log.exists() else ''}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _specs(count: int) -> list[SaleSpec]:
    """Offline sales at N1: tracked and kitchen products, payGO and cash, received 5 min ago."""
    start = timezone.now() - timedelta(hours=2)
    customers = list(Customer.objects.filter(institution__code="COL-SANJOSE").values_list("code", flat=True))
    prices = dict(Product.objects.values_list("sku", "price"))
    skus = ["SKU-EMPANADA", "SKU-SANDWICH", "SKU-AREPA", "SKU-AGUA", "SKU-JUGO"]
    specs = []
    for i in range(count):
        sku = skus[i % len(skus)]
        customer = customers[i % len(customers)] if i % 3 else None
        specs.append(
            SaleSpec(
                terminal=["N1-CAJA-01", "N1-CAJA-02"][i % 2],
                occurred_at=start + timedelta(seconds=i),
                customer=customer,
                lines=((sku, 1),),
                payments=(("paygo", prices[sku]),) if customer else None,
                received_at=timezone.now() - timedelta(minutes=5),
            )
        )
    return specs


def _assert_effects_exactly_once(sale_count: int) -> None:
    assert Sale.objects.filter(reconciled_at__isnull=True).count() == 0
    tracked_lines = SaleLine.objects.filter(product__tracks_inventory=True).count()
    assert StockMovement.objects.filter(kind="sale").count() == tracked_lines
    paygo = Payment.objects.filter(method="paygo").count()
    assert BalanceMovement.objects.filter(kind="sale").count() == paygo
    assert Comanda.objects.count() == SaleLine.objects.filter(product__requires_preparation=True).count()
    verification = ledgers_verify()
    assert verification.drift_count == 0, verification.drifts
    assert Sale.objects.count() == sale_count


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_reconciles_what_is_enqueued(demo, publisher, broker_url, tmp_path):
    sales = stored_sales_create(_specs(12))
    worker = Worker(broker_url, tmp_path / "worker.log")
    try:
        publisher.send_task("sales.tasks.sales_reconcile", kwargs={"sale_ids": [str(s.pk) for s in sales]})
        _wait_until(lambda: not Sale.objects.filter(reconciled_at__isnull=True).exists(), 60, "the worker to reconcile")
    finally:
        worker.stop()
    _assert_effects_exactly_once(12)
    assert Customer.objects.get(code="C-000123").balance < Decimal("12000")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_effects_exactly_once(demo, publisher, broker_url, tmp_path):
    count = 4000  # four chunks: the kill lands between commits
    stored_sales_create(_specs(count))
    first = Worker(broker_url, tmp_path / "worker-1.log")
    try:
        publisher.send_task("sales.tasks.sales_reconcile", kwargs={"sale_ids": None})
        _wait_until(lambda: Sale.objects.filter(reconciled_at__isnull=False).exists(), 120, "a first chunk")
    finally:
        first.kill()  # SIGKILL: no graceful shutdown, the open transaction is lost
    reconciled_at_kill = Sale.objects.filter(reconciled_at__isnull=False).count()
    assert 0 < reconciled_at_kill < count
    assert first.process.returncode == -signal.SIGKILL

    second = Worker(broker_url, tmp_path / "worker-2.log")
    try:
        # The killed task's message is unacknowledged (acks_late): Redis redelivers it only
        # after its visibility timeout, so the periodic sweep is what catches up here.
        publisher.send_task("sales.tasks.unreconciled_sales_sweep")
        _wait_until(lambda: not Sale.objects.filter(reconciled_at__isnull=True).exists(), 300, "the sweep to catch up")
    finally:
        second.stop()
    _assert_effects_exactly_once(count)
    print(f"killed after {reconciled_at_kill} of {count} sales; the second worker reconciled the rest once")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reconciles_split_the_work_and_apply_it_once(demo):
    # Not marked redis: two threads, each with its own PostgreSQL connection.
    import threading

    from django.db import connection

    from sales.reconcile import sales_reconcile

    count = 1500
    stored_sales_create(_specs(count))
    done: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            done.append(sales_reconcile(chunk_size=100))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert sum(done) == count
    _assert_effects_exactly_once(count)
