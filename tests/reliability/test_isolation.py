"""Isolation between institutions and nodes, for every operation of the POS sync API.

The matrix below has one check per operation the published schema lists; a new endpoint
without a check fails ``test_the_matrix_covers_every_operation_of_the_schema``. Each check
runs both ways: a key of COL-SANJOSE (N1) against EMP-ANDINA's data (N3) and the reverse.
A key reads only its own institution's customers and products and its own node's comandas;
another institution's sale or comanda is a ``404`` identical to one for an id that does not
exist (a ``403`` would confirm it exists); a sale naming another institution's customer or
product is rejected with ``unknown_customer``/``unknown_product`` (quarantined when offline,
``422`` online) and changes nothing of the other institution.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from billing.models import Customer
from inventory.models import NodeStock
from nodes.models import Terminal
from sales.models import Comanda, ComandaStatus, QuarantinedSale, Sale
from sales.reconcile import sales_reconcile
from tests.sales.payloads import BATCHES_URL, ONLINE_URL, assert_error_shape, batch, cash_sale, sale, sale_url

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/?format=json"


@dataclass(frozen=True)
class Side:
    institution: str
    node: str
    pos: str
    kitchen: str
    customer: str
    product: tuple[str, str]  # sku, price: sold for cash, no preparation
    prepared: tuple[str, str]  # sku, price: goes to the kitchen as a comanda


SIDES = {
    "COL-SANJOSE": Side(
        "COL-SANJOSE", "N1", "N1-CAJA-01", "N1-COCINA-01", "C-000123", ("SKU-JUGO", "3000.00"), ("SKU-AREPA", "3200.00")
    ),
    "EMP-ANDINA": Side(
        "EMP-ANDINA",
        "N3",
        "N3-CAJA-01",
        "N3-COCINA-01",
        "E-000100",
        ("AND-CAFE", "1800.00"),
        ("AND-SANDWICH", "9500.00"),
    ),
}
DIRECTIONS = [("COL-SANJOSE", "EMP-ANDINA"), ("EMP-ANDINA", "COL-SANJOSE")]


@dataclass
class World:
    """The demo plus, on each side, one accepted sale with a comanda (sent by its own POS)."""

    demo: dict
    sale_ids: dict[str, str]
    comanda_ids: dict[str, int]

    def client(self, terminal_code: str) -> APIClient:
        key = next(t["key"] for t in self.demo["terminals"] if t["code"] == terminal_code)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    def codes(self, kind: str, institution: str) -> set[str]:
        field = "sku" if kind == "products" else "code"
        return {row[field] for row in self.demo[kind] if row["institution"] == institution}


@pytest.fixture
def world(demo) -> World:
    world = World(demo=demo, sale_ids={}, comanda_ids={})
    for side in SIDES.values():
        sku, price = side.prepared
        body = cash_sale(sku=sku, price=price)
        result = world.client(side.pos).post(BATCHES_URL, batch(body), format="json").json()
        assert result["accepted"] == 1, result
        world.sale_ids[side.institution] = body["id"]
    sales_reconcile()
    for institution, sale_id in world.sale_ids.items():
        world.comanda_ids[institution] = Comanda.objects.get(sale_id=sale_id).pk
    return world


def institution_state(institution: str) -> dict:
    """Everything a foreign key could try to change in ``institution``."""
    return {
        "balances": dict(Customer.objects.filter(institution__code=institution).values_list("code", "balance")),
        "stock": sorted(
            NodeStock.objects.filter(node__institution__code=institution).values_list(
                "node__code", "product__sku", "quantity"
            )
        ),
        "sales": sorted(
            str(pk) for pk in Sale.objects.filter(institution__code=institution).values_list("pk", flat=True)
        ),
        "quarantined": QuarantinedSale.objects.filter(terminal__node__institution__code=institution).count(),
        "comandas": sorted(Comanda.objects.filter(node__institution__code=institution).values_list("pk", "status")),
        "terminals": sorted(
            Terminal.objects.filter(node__institution__code=institution).values_list(
                "code", "reported_pending_sales", "reported_last_seq", "key_hash"
            )
        ),
    }


def same_as_missing(response, missing) -> None:
    """A foreign id answers exactly like an id that does not exist: nothing leaks."""
    assert_error_shape(response, 404, "not_found")
    assert missing.status_code == 404
    assert response.json() == missing.json()


# --- one check per operation ----------------------------------------------------------------


def check_config(world: World, own: Side, other: Side) -> None:
    body = world.client(own.pos).get("/api/v1/pos/config").json()
    assert body["terminal"]["code"] == own.pos
    assert body["node"]["code"] == own.node
    text = str(body)
    assert other.node + "-" not in text
    assert other.institution not in text


def check_catalog(world: World, own: Side, other: Side) -> None:
    response = world.client(own.pos).get("/api/v1/pos/catalog")
    assert response.status_code == 200
    assert {p["sku"] for p in response.json()["products"]} == world.codes("products", own.institution)
    for sku in world.codes("products", other.institution):
        assert sku not in response.text


def check_balances(world: World, own: Side, other: Side) -> None:
    client = world.client(own.pos)
    snapshot = client.get("/api/v1/pos/balances")
    assert snapshot.status_code == 200
    assert {c["code"] for c in snapshot.json()["customers"]} == world.codes("customers", own.institution)
    for code in world.codes("customers", other.institution):
        assert f'"{code}"' not in snapshot.text
    # The other institution's cursor gives a snapshot of this institution, never the other's.
    foreign_cursor = world.client(other.pos).get("/api/v1/pos/balances").json()["cursor"]
    delta = client.get("/api/v1/pos/balances", {"cursor": foreign_cursor}).json()
    assert {c["code"] for c in delta["customers"]} <= world.codes("customers", own.institution)


def check_sale_detail(world: World, own: Side, other: Side) -> None:
    client = world.client(own.pos)
    assert client.get(sale_url(world.sale_ids[own.institution])).status_code == 200
    same_as_missing(client.get(sale_url(world.sale_ids[other.institution])), client.get(sale_url(uuid.uuid4())))


def check_batch_upload(world: World, own: Side, other: Side) -> None:
    before = institution_state(other.institution)
    own_quarantined = QuarantinedSale.objects.filter(terminal__code=own.pos).count()
    sku, price = own.product
    foreign_customer = sale(
        customer=other.customer,
        lines=[{"sku": sku, "quantity": "1", "unit_price": price}],
        payments=[{"method": "paygo", "amount": price}],
        known_balance=None,
    )
    foreign_product = cash_sale(sku=other.product[0], price=other.product[1])

    response = world.client(own.pos).post(BATCHES_URL, batch(foreign_customer, foreign_product), format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert results[0]["errors"][0]["code"] == "unknown_customer"
    assert results[1]["errors"][0]["code"] == "unknown_product"
    assert QuarantinedSale.objects.filter(terminal__code=own.pos).count() == own_quarantined + 2
    sales_reconcile()
    assert institution_state(other.institution) == before


def check_online_sale(world: World, own: Side, other: Side) -> None:
    before = institution_state(other.institution)
    client = world.client(own.pos)
    sku, price = own.product
    foreign_customer = sale(
        offline=False,
        customer=other.customer,
        lines=[{"sku": sku, "quantity": "1", "unit_price": price}],
        payments=[{"method": "paygo", "amount": price}],
        known_balance=None,
    )
    foreign_product = cash_sale(sku=other.product[0], price=other.product[1], offline=False)

    for body, code in ((foreign_customer, "unknown_customer"), (foreign_product, "unknown_product")):
        error = assert_error_shape(client.post(ONLINE_URL, body, format="json"), 422)
        assert code in {e["code"] for e in error["details"]["errors"]}
        assert not Sale.objects.filter(pk=body["id"]).exists()
    assert institution_state(other.institution) == before


def check_heartbeat(world: World, own: Side, other: Side) -> None:
    before = institution_state(other.institution)
    # Fields naming another terminal are not part of the contract and must not redirect the write.
    response = world.client(own.pos).post(
        "/api/v1/pos/heartbeat",
        {"pending_sales": 7, "last_seq": 99, "terminal": other.pos, "code": other.pos},
        format="json",
    )
    assert response.status_code == 200
    assert Terminal.objects.get(code=own.pos).reported_pending_sales == 7
    assert institution_state(other.institution) == before


def check_kitchen_list(world: World, own: Side, other: Side) -> None:
    response = world.client(own.kitchen).get("/api/v1/kitchen/comandas")
    assert response.status_code == 200
    listed = {c["id"] for c in response.json()["comandas"]}
    assert world.comanda_ids[own.institution] in listed
    assert listed == set(Comanda.objects.filter(node__code=own.node).values_list("pk", flat=True))
    assert world.sale_ids[other.institution] not in response.text


def check_kitchen_status(world: World, own: Side, other: Side) -> None:
    client = world.client(own.kitchen)
    before = institution_state(other.institution)
    foreign = world.comanda_ids[other.institution]
    missing_id = Comanda.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000

    response = client.post(f"/api/v1/kitchen/comandas/{foreign}/status", {"status": "ready"}, format="json")

    same_as_missing(
        response, client.post(f"/api/v1/kitchen/comandas/{missing_id}/status", {"status": "ready"}, format="json")
    )
    assert Comanda.objects.get(pk=foreign).status == ComandaStatus.PENDING
    assert institution_state(other.institution) == before
    own_comanda = world.comanda_ids[own.institution]
    ok = client.post(f"/api/v1/kitchen/comandas/{own_comanda}/status", {"status": "ready"}, format="json")
    assert ok.status_code == 200


MATRIX: dict[str, Callable[[World, Side, Side], None]] = {
    "GET /api/v1/pos/config": check_config,
    "GET /api/v1/pos/catalog": check_catalog,
    "GET /api/v1/pos/balances": check_balances,
    "GET /api/v1/pos/sales/{sale_id}": check_sale_detail,
    "POST /api/v1/pos/sales/batches": check_batch_upload,
    "POST /api/v1/pos/sales": check_online_sale,
    "POST /api/v1/pos/heartbeat": check_heartbeat,
    "GET /api/v1/kitchen/comandas": check_kitchen_list,
    "POST /api/v1/kitchen/comandas/{comanda_id}/status": check_kitchen_status,
}


def test_the_matrix_covers_every_operation_of_the_schema(db):
    paths = APIClient().get(SCHEMA_URL).json()["paths"]
    operations = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    assert operations == set(MATRIX)


@pytest.mark.parametrize(("own", "other"), DIRECTIONS, ids=["school-vs-company", "company-vs-school"])
@pytest.mark.parametrize("operation", list(MATRIX))
def test_a_key_never_reaches_another_institution(world, operation, own, other):
    MATRIX[operation](world, SIDES[own], SIDES[other])


def test_the_two_sides_really_differ(world):
    # Guards the matrix itself: the sides use distinct institutions, nodes, kitchens and data.
    school, company = SIDES["COL-SANJOSE"], SIDES["EMP-ANDINA"]
    assert Terminal.objects.get(code=school.kitchen).node.code != Terminal.objects.get(code=company.kitchen).node.code
    assert Customer.objects.get(code=school.customer).institution.code == school.institution
    assert Customer.objects.get(code=company.customer).institution.code == company.institution
    assert world.codes("products", school.institution).isdisjoint(world.codes("products", company.institution))
