"""verify_ledgers: materialized stock, balances and units against their ledgers."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import Customer, UnitBalance
from inventory.models import LedgerVerification, NodeStock, Product
from inventory.tasks import ledgers_verify as ledgers_verify_task
from sales.reconcile import sales_reconcile
from tests.sales.stored_sales import SaleSpec, stored_sales_create

pytestmark = pytest.mark.django_db


def _random_sales(count: int, seed: int) -> None:
    rng = random.Random(seed)
    start = timezone.now() - timedelta(hours=3)
    customers = list(Customer.objects.filter(institution__code="COL-SANJOSE").values_list("code", flat=True))
    skus = ["SKU-EMPANADA", "SKU-SANDWICH", "SKU-GASEOSA", "SKU-AGUA", "SKU-JUGO", "SKU-AREPA"]
    specs = []
    for _ in range(count):
        sku = rng.choice(skus)
        quantity = rng.randint(1, 3)
        customer = rng.choice([None, *customers])
        amount = None
        if customer:
            amount = Product.objects.get(sku=sku).price * quantity
        specs.append(
            SaleSpec(
                terminal=rng.choice(["N1-CAJA-01", "N1-CAJA-02", "N2-CAJA-01"]),
                occurred_at=start + timedelta(seconds=rng.randint(0, 9000)),
                customer=customer,
                lines=((sku, quantity),),
                payments=(("paygo", amount),) if customer else None,
                offline=rng.random() < 0.7,
            )
        )
    stored_sales_create(specs)
    sales_reconcile()


def test_no_drift_after_random_sales(demo, capsys):
    _random_sales(60, seed=7)
    call_command("verify_ledgers")
    out = capsys.readouterr().out
    assert "Sin diferencias" in out
    verification = LedgerVerification.objects.get()
    assert verification.drift_count == 0
    assert verification.stock_rows_checked == NodeStock.objects.count()
    assert verification.balance_rows_checked == Customer.objects.count() + UnitBalance.objects.count()


def test_drift_is_reported_and_the_command_fails(demo, capsys):
    _random_sales(20, seed=11)
    # A deliberate corruption: a materialized value changed without its movement.
    row = NodeStock.objects.get(node__code="N1", product__sku="SKU-AGUA")
    NodeStock.objects.filter(pk=row.pk).update(quantity=row.quantity + 5)
    Customer.objects.filter(code="C-000123").update(balance=Decimal("1.00"))

    with pytest.raises(CommandError):
        call_command("verify_ledgers")

    out = capsys.readouterr().out
    assert "SKU-AGUA" in out
    verification = LedgerVerification.objects.get()
    assert verification.drift_count == 2
    kinds = {(d["kind"], d.get("sku") or d.get("customer")) for d in verification.drifts}
    assert kinds == {("stock", "SKU-AGUA"), ("balance", "C-000123")}
    stock_drift = next(d for d in verification.drifts if d["kind"] == "stock")
    assert Decimal(stock_drift["materialized"]) - Decimal(stock_drift["ledger"]) == 5
    assert ledgers_verify_task.delay().get() == 2


def test_units_drift_is_found(demo):
    UnitBalance.objects.filter(customer__code="C-000201").update(quantity=99)
    assert ledgers_verify_task() == 1
