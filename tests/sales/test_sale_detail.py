"""GET /api/v1/pos/sales/{id}: a terminal reads back its own sales only."""

from __future__ import annotations

import uuid

import pytest

from billing.models import InvoiceResolution
from tests.sales.payloads import BATCHES_URL, assert_error_shape, batch, sale, sale_url

pytestmark = pytest.mark.django_db


def upload(client, *sales):
    return client.post(BATCHES_URL, batch(*sales), format="json").json()


def test_terminal_reads_back_its_sale_with_invoice(pos_client):
    resolution = InvoiceResolution.objects.get(terminal__code="N1-CAJA-01")
    body = sale(invoice={"prefix": "FE", "number": resolution.range_from + 4, "resolution": resolution.number})
    upload(pos_client(), body)

    response = pos_client().get(sale_url(body["id"]))

    assert response.status_code == 200
    read = response.json()
    assert read["id"] == body["id"]
    assert read["status"] == "accepted"
    assert read["reconciled"] is False
    assert read["invoice"] == {
        "prefix": "FE",
        "number": resolution.range_from + 4,
        "resolution": resolution.number,
        "range_from": resolution.range_from,
        "range_to": resolution.range_to,
    }
    assert read["payments"] == [{"method": "paygo", "amount": "7000.00", "unit_type": None}]
    assert read["flags"] == []


def test_a_quarantined_sale_reads_as_rejected_with_its_errors(pos_client):
    body = sale(customer="C-NOPE")
    upload(pos_client(), body)
    read = pos_client().get(sale_url(body["id"])).json()
    assert read["status"] == "rejected"
    assert read["errors"][0]["code"] == "unknown_customer"


@pytest.mark.parametrize("reader", ["N1-CAJA-02", "N3-CAJA-01"])
def test_other_terminals_get_404(pos_client, reader):
    body = sale()
    upload(pos_client("N1-CAJA-01"), body)
    assert_error_shape(pos_client(reader).get(sale_url(body["id"])), 404, "not_found")


@pytest.mark.parametrize("sale_id", ["no-es-un-uuid", str(uuid.uuid4()), "%00", "1" * 300])
def test_unknown_or_non_uuid_ids_are_404(pos_client, sale_id):
    assert_error_shape(pos_client().get(sale_url(sale_id)), 404)
