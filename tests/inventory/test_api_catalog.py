"""GET /api/v1/pos/catalog."""

from decimal import Decimal

import pytest

from inventory.models import Product, StockMovementKind
from inventory.services import stock_movement_record
from nodes.models import Institution, Node

CATALOG = "/api/v1/pos/catalog"


def _by_sku(response):
    assert response.status_code == 200
    return {product["sku"]: product for product in response.json()["products"]}


@pytest.mark.django_db
def test_catalog_lists_the_institution_products_with_stock_at_this_node(pos_client, demo):
    products = _by_sku(pos_client("N1-CAJA-01").get(CATALOG))

    expected = {p["sku"] for p in demo["products"] if p["institution"] == "COL-SANJOSE"}
    assert set(products) == expected
    assert products["SKU-EMPANADA"] == {
        "sku": "SKU-EMPANADA",
        "name": "Empanada de carne",
        "price": "3500.00",
        "tracks_inventory": True,
        "stock": "40",
        "requires_preparation": False,
        "unit_type": None,
        "active": True,
    }
    assert products["SKU-ALMUERZO"]["stock"] is None  # not tracked
    assert products["SKU-ALMUERZO"]["unit_type"] == "ALMUERZO"
    assert products["SKU-SANDWICH"]["requires_preparation"] is True


@pytest.mark.django_db
def test_catalog_stock_is_the_terminal_nodes_own(pos_client):
    # Same institution, other node: N2 holds 15 empanadas, N1 40.
    products = _by_sku(pos_client("N2-CAJA-01").get(CATALOG))

    assert products["SKU-EMPANADA"]["stock"] == "15"
    assert products["SKU-SANDWICH"]["stock"] == "2"


@pytest.mark.django_db
def test_catalog_follows_the_stock_ledger(pos_client):
    node = Node.objects.get(code="N1")
    product = Product.objects.get(institution__code="COL-SANJOSE", sku="SKU-AGUA")
    stock_movement_record(node=node, product=product, quantity=Decimal("-2.5"), kind=StockMovementKind.ADJUSTMENT)

    products = _by_sku(pos_client("N1-CAJA-01").get(CATALOG))

    assert products["SKU-AGUA"]["stock"] == "27.5"


@pytest.mark.django_db
def test_tracked_product_never_received_at_the_node_has_stock_zero(pos_client):
    institution = Institution.objects.get(code="COL-SANJOSE")
    Product.objects.create(institution=institution, sku="SKU-NUEVO", name="Nuevo", price="1000", tracks_inventory=True)
    Product.objects.create(
        institution=institution, sku="SKU-VIEJO", name="Viejo", price="900.5", tracks_inventory=False, active=False
    )

    products = _by_sku(pos_client("N1-CAJA-01").get(CATALOG))

    assert products["SKU-NUEVO"]["stock"] == "0"
    assert products["SKU-VIEJO"]["active"] is False
    assert products["SKU-VIEJO"]["price"] == "900.50"
    assert products["SKU-VIEJO"]["stock"] is None


@pytest.mark.django_db
def test_catalog_isolation_between_institutions_both_ways(pos_client, demo):
    school = _by_sku(pos_client("N1-CAJA-01").get(CATALOG))
    company = _by_sku(pos_client("N3-CAJA-01").get(CATALOG))

    assert set(company) == {p["sku"] for p in demo["products"] if p["institution"] == "EMP-ANDINA"}
    assert not set(school) & set(company)
    assert all(not sku.startswith("AND-") for sku in school)
    assert company["AND-GASEOSA"]["stock"] == "18"


@pytest.mark.django_db
def test_catalog_costs_the_same_queries_whatever_the_number_of_products(pos_client, django_assert_num_queries):
    client = pos_client("N1-CAJA-01")
    institution = Institution.objects.get(code="COL-SANJOSE")
    node = Node.objects.get(code="N1")
    with django_assert_num_queries(2):  # the key lookup and the products with their stock
        client.get(CATALOG)

    for index in range(30):
        product = Product.objects.create(
            institution=institution, sku=f"SKU-X{index:02d}", name=f"X{index}", price="100", tracks_inventory=True
        )
        stock_movement_record(node=node, product=product, quantity=Decimal(index + 1), kind=StockMovementKind.RECEIPT)

    with django_assert_num_queries(2):
        response = client.get(CATALOG)
    assert _by_sku(response)["SKU-X29"]["stock"] == "30"


@pytest.mark.django_db
def test_catalog_needs_a_key(client, demo):
    response = client.get(CATALOG, HTTP_AUTHORIZATION="Bearer pgt_not-a-key")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
