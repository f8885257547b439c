"""Kitchen API (contract section 6): comandas of the kitchen terminal's node."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sales.models import Comanda, ComandaStatus
from sales.reconcile import sales_reconcile
from tests.sales.stored_sales import SaleSpec, stored_sales_create

pytestmark = pytest.mark.django_db


def client_for(demo, code: str) -> APIClient:
    key = next(t["key"] for t in demo["terminals"] if t["code"] == code)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def comandas(demo, at):
    late, early, n3, _no_prep = stored_sales_create(
        [
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(30), lines=(("SKU-AREPA", 2),)),
            SaleSpec(terminal="N1-CAJA-02", occurred_at=at(10), lines=(("SKU-SANDWICH", 1), ("SKU-JUGO", 1))),
            SaleSpec(terminal="N3-CAJA-01", occurred_at=at(20), lines=(("AND-SANDWICH", 1),)),
            SaleSpec(terminal="N1-CAJA-01", occurred_at=at(40), lines=(("SKU-JUGO", 1),)),
        ]
    )
    (online,) = stored_sales_create(
        [SaleSpec(terminal="N1-CAJA-01", occurred_at=at(35), offline=False, lines=(("SKU-AREPA", 1),))]
    )
    sales_reconcile()
    return {"late": late, "early": early, "n3": n3, "online": online}


def test_kitchen_sees_its_node_comandas_in_time_of_sale(demo, comandas):
    response = client_for(demo, "N1-COCINA-01").get("/api/v1/kitchen/comandas?status=pending")
    assert response.status_code == 200
    body = response.json()["comandas"]
    assert [c["sale_id"] for c in body] == [str(comandas[k].pk) for k in ("early", "late", "online")]
    first = body[0]
    assert set(first) == {"id", "sale_id", "occurred_at", "received_at", "late", "status", "items"}
    assert first["late"] is True
    assert first["status"] == "pending"
    assert first["items"] == [{"sku": "SKU-SANDWICH", "name": "Sándwich de pollo", "quantity": "1.000"}]
    assert body[2]["late"] is False


def test_status_moves_forward_only(demo, comandas):
    client = client_for(demo, "N1-COCINA-01")
    comanda = Comanda.objects.get(sale=comandas["early"])
    url = f"/api/v1/kitchen/comandas/{comanda.pk}/status"

    assert client.post(url, {"status": "in_progress"}, format="json").json()["status"] == "in_progress"
    response = client.post(url, {"status": "ready"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert client.post(url, {"status": "ready"}, format="json").status_code == 200  # a retry is harmless

    backwards = client.post(url, {"status": "pending"}, format="json")
    assert backwards.status_code == 409
    assert backwards.json()["error"]["code"] == "comanda_status_backwards"

    assert client.post(url, {"status": "delivered"}, format="json").status_code == 200
    comanda.refresh_from_db()
    assert comanda.status == ComandaStatus.DELIVERED
    assert comanda.status_changed_at is not None

    pending = client.get("/api/v1/kitchen/comandas?status=pending").json()["comandas"]
    assert str(comandas["early"].pk) not in [c["sale_id"] for c in pending]
    delivered = client.get("/api/v1/kitchen/comandas?status=delivered").json()["comandas"]
    assert [c["id"] for c in delivered] == [comanda.pk]


def test_skipping_forward_is_allowed(demo, comandas):
    comanda = Comanda.objects.get(sale=comandas["late"])
    response = client_for(demo, "N1-COCINA-01").post(
        f"/api/v1/kitchen/comandas/{comanda.pk}/status", {"status": "delivered"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "delivered"


def test_another_nodes_comanda_is_not_found(demo, comandas):
    comanda = Comanda.objects.get(sale=comandas["n3"])
    client = client_for(demo, "N1-COCINA-01")
    response = client.post(f"/api/v1/kitchen/comandas/{comanda.pk}/status", {"status": "ready"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    listed = client.get("/api/v1/kitchen/comandas").json()["comandas"]
    assert comanda.pk not in [c["id"] for c in listed]
    n3 = client_for(demo, "N3-COCINA-01").get("/api/v1/kitchen/comandas").json()["comandas"]
    assert [c["id"] for c in n3] == [comanda.pk]


def test_pos_keys_are_forbidden_and_missing_keys_unauthorized(demo, comandas):
    pos = client_for(demo, "N1-CAJA-01")
    response = pos.get("/api/v1/kitchen/comandas")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    comanda = Comanda.objects.get(sale=comandas["early"])
    assert (
        pos.post(f"/api/v1/kitchen/comandas/{comanda.pk}/status", {"status": "ready"}, format="json").status_code == 403
    )
    assert APIClient().get("/api/v1/kitchen/comandas").status_code == 401


def test_invalid_status_values_are_refused(demo, comandas):
    client = client_for(demo, "N1-COCINA-01")
    assert client.get("/api/v1/kitchen/comandas?status=cooking").status_code == 400
    comanda = Comanda.objects.get(sale=comandas["early"])
    response = client.post(f"/api/v1/kitchen/comandas/{comanda.pk}/status", {"status": "eaten"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert client.post("/api/v1/kitchen/comandas/999999/status", {"status": "ready"}, format="json").status_code == 404


def test_schema_describes_the_kitchen_endpoints(db):
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/kitchen/comandas" in paths
    assert "/api/v1/kitchen/comandas/{comanda_id}/status" in paths
