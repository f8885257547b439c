"""POST /api/v1/pos/sales: every rule enforced before storing, effects applied at once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import BalanceMovement, Customer, UnitBalance
from inventory.models import NodeStock, StockMovement
from sales.models import QuarantinedSale, Sale
from tests.sales.payloads import ONLINE_URL, assert_error_shape, sale

pytestmark = pytest.mark.django_db


def online(**overrides):
    return sale(offline=False, **overrides)


def post(client, body):
    return client.post(ONLINE_URL, body, format="json")


def _stock(sku, node="N1"):
    return NodeStock.objects.get(node__code=node, product__sku=sku).quantity


def test_online_sale_is_stored_with_its_effects_applied(pos_client):
    # Given Ana with 12000 and 40 empanadas at N1
    body = online()
    # When she buys two empanadas online
    response = post(pos_client(), body)
    # Then the sale is stored and stock and balance move at once, through the ledgers
    assert response.status_code == 201, response.json()
    stored = response.json()
    assert stored["id"] == body["id"]
    assert stored["status"] == "accepted"
    assert stored["reconciled"] is False
    assert stored["lines"] == [{"sku": "SKU-EMPANADA", "quantity": "2", "unit_price": "3500.00", "total": "7000.00"}]
    assert stored["invoice"] is None
    assert _stock("SKU-EMPANADA") == Decimal("38")
    assert Customer.objects.get(code="C-000123").balance == Decimal("5000.00")
    sale_row = Sale.objects.get(pk=body["id"])
    assert StockMovement.objects.get(sale_line__sale=sale_row).quantity == Decimal("-2")
    assert BalanceMovement.objects.get(payment__sale=sale_row).amount == Decimal("-7000.00")


def test_online_units_sale_consumes_units(pos_client):
    body = online(
        lines=[{"sku": "SKU-ALMUERZO", "quantity": "2", "unit_price": "0.00"}],
        payments=[{"method": "units", "amount": "2", "unit_type": "ALMUERZO"}],
    )
    assert post(pos_client(), body).status_code == 201
    assert UnitBalance.objects.get(customer__code="C-000123", unit_type="ALMUERZO").quantity == 10


def test_same_online_sale_again_is_a_200_duplicate_without_new_effects(pos_client):
    body = online()
    post(pos_client(), body)
    response = post(pos_client(), body)
    assert response.status_code == 200
    assert response.json()["id"] == body["id"]
    assert _stock("SKU-EMPANADA") == Decimal("38")
    assert Customer.objects.get(code="C-000123").balance == Decimal("5000.00")


def test_same_online_id_with_other_content_is_a_conflict(pos_client):
    body = online()
    post(pos_client(), body)
    changed = {**body, "known_balance": "1.00"}
    error = assert_error_shape(post(pos_client(), changed), 422, "conflict")
    assert error["details"]["errors"][0]["code"] == "conflict"


@pytest.mark.parametrize(
    ("customer", "lines", "payments", "code"),
    [
        (None, [("SKU-SANDWICH", "5", "6500.00")], [("cash", "32500.00")], "insufficient_stock"),
        ("C-000123", [("SKU-GASEOSA", "1", "2500.00")], [("paygo", "2500.00")], "product_blocked"),
        ("C-000200", [("SKU-JUGO", "1", "3000.00")], [("paygo", "3000.00")], "insufficient_balance"),
        ("C-000201", [("SKU-FRUTA", "7", "1500.00")], [("cash", "10500.00")], "daily_max_exceeded"),
        ("C-000123", [("SKU-ALMUERZO", "13", "0.00")], [("units", "13")], "insufficient_units"),
        ("C-000123", [("SKU-NADA", "1", "1.00")], [("cash", "1.00")], "unknown_product"),
        ("C-NADIE", [("SKU-JUGO", "1", "3000.00")], [("cash", "3000.00")], "unknown_customer"),
        ("C-000123", [("SKU-JUGO", "1", "3000.00")], [("cash", "2000.00")], "totals_mismatch"),
        ("C-000123", [("SKU-JUGO", "0", "3000.00")], [("cash", "0.00")], "invalid_quantity"),
    ],
)
def test_each_online_rule_rejects_with_its_code_and_stores_nothing(pos_client, customer, lines, payments, code):
    body = online(
        customer=customer,
        lines=[{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        payments=[
            {"method": m, "amount": a, **({"unit_type": "ALMUERZO"} if m == "units" else {})} for m, a in payments
        ],
    )
    before = (_stock("SKU-SANDWICH"), Customer.objects.get(code="C-000123").balance)

    error = assert_error_shape(post(pos_client(), body), 422, code)

    assert [e["code"] for e in error["details"]["errors"]] == [code]
    assert all(e["field"] and e["message"] for e in error["details"]["errors"])
    assert Sale.objects.count() == 0
    assert QuarantinedSale.objects.count() == 0
    assert (_stock("SKU-SANDWICH"), Customer.objects.get(code="C-000123").balance) == before


def test_a_422_lists_every_rule_the_sale_breaks(pos_client):
    # Lucía: 8000 without overdraft, daily max 10000, PAPAS blocked, 5 lunches; 4 sandwiches in stock.
    body = online(
        customer="C-000201",
        lines=[
            {"sku": "SKU-PAPAS", "quantity": "1", "unit_price": "2800.00"},
            {"sku": "SKU-SANDWICH", "quantity": "5", "unit_price": "6500.00"},
            {"sku": "SKU-ALMUERZO", "quantity": "6", "unit_price": "0.00"},
        ],
        payments=[
            {"method": "paygo", "amount": "35300.00"},
            {"method": "units", "amount": "6", "unit_type": "ALMUERZO"},
        ],
    )
    error = assert_error_shape(post(pos_client(), body), 422)
    codes = {e["code"] for e in error["details"]["errors"]}
    assert codes == {
        "insufficient_stock",
        "product_blocked",
        "daily_max_exceeded",
        "insufficient_balance",
        "insufficient_units",
    }
    assert error["code"] == error["details"]["errors"][0]["code"]


def test_offline_sale_posted_to_the_online_endpoint_is_malformed(pos_client):
    error = assert_error_shape(post(pos_client(), sale(offline=True)), 422, "malformed")
    assert error["details"]["errors"][0]["field"] == "offline"


def test_daily_max_counts_the_customers_stored_sales_of_the_day(pos_client):
    # Lucía's daily max is 10000: 6000 then 4500 more is over.
    first = online(
        customer="C-000201",
        lines=[{"sku": "SKU-FRUTA", "quantity": "4", "unit_price": "1500.00"}],
        payments=[{"method": "cash", "amount": "6000.00"}],
    )
    second = online(
        customer="C-000201",
        lines=[{"sku": "SKU-FRUTA", "quantity": "3", "unit_price": "1500.00"}],
        payments=[{"method": "cash", "amount": "4500.00"}],
    )
    assert post(pos_client(), first).status_code == 201
    assert_error_shape(post(pos_client(), second), 422, "daily_max_exceeded")


def test_kitchen_key_cannot_sell_online(pos_client):
    assert_error_shape(post(pos_client("N1-COCINA-01"), online()), 403)
