"""Set-based increments of materialized values (``paygo.increments``), on either database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Customer, UnitBalance
from inventory.models import NodeStock, Product
from nodes.models import Node
from paygo.increments import increments_apply, increments_upsert

pytestmark = pytest.mark.django_db


def test_upsert_adds_to_existing_rows_and_creates_the_missing_ones_with_the_delta(demo):
    node = Node.objects.get(code="N1")
    stocked, new = Product.objects.filter(sku__in=["SKU-EMPANADA", "SKU-JUGO"]).order_by("sku")
    NodeStock.objects.filter(node=node, product=new).delete()
    before = NodeStock.objects.get(node=node, product=stocked)
    started = timezone.now()

    written = increments_upsert(
        NodeStock,
        ("node", "product"),
        "quantity",
        {(node.pk, stocked.pk): Decimal("-2.500"), (node.pk, new.pk): Decimal("-1.000")},
        touched="updated_at",
    )

    assert written == 2
    after = NodeStock.objects.get(node=node, product=stocked)
    assert after.quantity == before.quantity - Decimal("2.5")
    assert after.updated_at >= started
    created = NodeStock.objects.get(node=node, product=new)
    assert created.quantity == Decimal("-1")
    assert created.updated_at >= started


def test_upsert_defaults_the_other_columns_and_repeats_add_up(demo):
    customer = Customer.objects.get(code="C-000123")
    UnitBalance.objects.filter(customer=customer, unit_type="DESAYUNO").delete()
    for _ in range(3):
        increments_upsert(UnitBalance, ("customer", "unit_type"), "quantity", {(customer.pk, "DESAYUNO"): -1})
    assert UnitBalance.objects.get(customer=customer, unit_type="DESAYUNO").quantity == -3
    assert increments_upsert(UnitBalance, ("customer", "unit_type"), "quantity", {}) == 0


def test_upsert_writes_many_rows_in_one_statement(demo, django_assert_num_queries):
    customers = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    deltas = {(pk, f"TIPO-{i}"): i + 1 for pk in customers for i in range(3)}
    with django_assert_num_queries(1):
        assert increments_upsert(UnitBalance, ("customer", "unit_type"), "quantity", deltas) == len(deltas)
    stored = {
        (c, u): q
        for c, u, q in UnitBalance.objects.filter(unit_type__startswith="TIPO-").values_list(
            "customer_id", "unit_type", "quantity"
        )
    }
    assert stored == deltas


def test_apply_adds_and_assigns_in_one_statement(demo, django_assert_num_queries):
    customer = Customer.objects.get(code="C-000123")
    with django_assert_num_queries(1):
        increments_apply(
            Customer, "balance", {customer.pk: Decimal("-100.00")}, assign={"change_seq": {customer.pk: 77}}
        )
    customer_after = Customer.objects.get(pk=customer.pk)
    assert customer_after.balance == customer.balance - Decimal("100")
    assert customer_after.change_seq == 77
