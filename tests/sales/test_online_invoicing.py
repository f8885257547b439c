"""Online sales and invoices (contract §5): the server numbers node- and institution-level
sales while it stores them; a terminal-level register's own number is checked as in a
batch; a sale that cannot be numbered is refused with the invoice codes; the kitchen sees
an online sale's comanda at once.

The demo gives N1's registers terminal-level resolutions, N2 a node-level one and N3
(EMP-ANDINA) an institution-level one, all valid today with 5000 numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from billing.models import InvoiceResolution
from sales.ingest import BUSINESS_TZ
from sales.models import Comanda, InvoiceSource, Sale
from sales.reconcile import sales_reconcile
from tests.sales.payloads import ONLINE_URL, assert_error_shape, cash_sale, sale, sale_url

pytestmark = pytest.mark.django_db

KITCHEN_URL = "/api/v1/kitchen/comandas"


def online_cash(sku: str = "SKU-JUGO", price: str = "3000.00", **overrides):
    return cash_sale(sku=sku, price=price, offline=False, **overrides)


def post(client, body):
    return client.post(ONLINE_URL, body, format="json")


def sale_day(sale: dict) -> date:
    """The business date of a sale payload: the day its resolution must cover. Not today:
    the payloads are made a few minutes in the past, which is yesterday just after
    midnight in Bogotá."""
    return datetime.fromisoformat(sale["occurred_at"]).astimezone(BUSINESS_TZ).date()


def node_resolution(node: str = "N2") -> InvoiceResolution:
    return InvoiceResolution.objects.get(level="node", node__code=node, active=True)


def institution_resolution() -> InvoiceResolution:
    return InvoiceResolution.objects.get(level="institution", institution__code="EMP-ANDINA", active=True)


def own_resolution(terminal: str = "N1-CAJA-01") -> InvoiceResolution:
    return InvoiceResolution.objects.get(level="terminal", terminal__code=terminal, active=True)


def codes(response) -> list[str]:
    return [e["code"] for e in response.json()["error"]["details"]["errors"]]


# --- Node and institution level: the server numbers ------------------------------------------


def test_online_sales_at_node_level_get_consecutive_numbers_in_the_201(pos_client):
    # Given N2's node-level resolution, untouched
    resolution = node_resolution()
    first = resolution.next_number
    client = pos_client("N2-CAJA-01")

    # When three online sales are made
    responses = [post(client, online_cash()) for _ in range(3)]

    # Then each is numbered with the next consecutive, shown in the 201 and read back
    assert [r.status_code for r in responses] == [201, 201, 201]
    expected = [
        {
            "prefix": "FE",
            "number": first + i,
            "resolution": resolution.number,
            "range_from": resolution.range_from,
            "range_to": resolution.range_to,
        }
        for i in range(3)
    ]
    assert [r.json()["invoice"] for r in responses] == expected
    assert [client.get(sale_url(r.json()["id"])).json()["invoice"] for r in responses] == expected
    resolution.refresh_from_db()
    assert resolution.next_number == first + 3
    assert set(Sale.objects.values_list("invoice_source", flat=True)) == {InvoiceSource.SERVER}
    # An online sale is not a deferred one.
    assert all("invoice_deferred" not in r.json()["flags"] for r in responses)


def test_the_institution_range_is_shared_by_every_register_of_the_institution(pos_client):
    resolution = institution_resolution()
    first = resolution.next_number

    one = post(pos_client("N3-CAJA-01"), online_cash(sku="AND-CAFE", price="1800.00"))
    two = post(pos_client("N3-CAJA-02"), online_cash(sku="AND-CAFE", price="1800.00"))

    assert (one.status_code, two.status_code) == (201, 201)
    assert [one.json()["invoice"]["number"], two.json()["invoice"]["number"]] == [first, first + 1]


def test_a_rejected_online_sale_does_not_consume_a_number(pos_client):
    # Given N2 with 2 sandwiches in stock
    resolution = node_resolution()
    first = resolution.next_number
    client = pos_client("N2-CAJA-01")

    # When a sale of 5 sandwiches is refused, and then a good sale is made
    refused = post(client, online_cash(sku="SKU-SANDWICH", price="6500.00", quantity="5"))
    accepted = post(client, online_cash())

    # Then the refused one took no number: the good one gets the first
    assert_error_shape(refused, 422, "insufficient_stock")
    assert accepted.json()["invoice"]["number"] == first
    resolution.refresh_from_db()
    assert resolution.next_number == first + 1


def test_a_repeated_online_sale_keeps_its_number_and_takes_no_other(pos_client):
    client = pos_client("N2-CAJA-01")
    body = online_cash()
    first = post(client, body)
    again = post(client, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["invoice"] == first.json()["invoice"]
    assert node_resolution().next_number == first.json()["invoice"]["number"] + 1


def test_an_exhausted_range_refuses_the_sale_with_invoice_range_exhausted(pos_client):
    resolution = node_resolution()
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_to + 1)

    response = post(pos_client("N2-CAJA-01"), online_cash())

    error = assert_error_shape(response, 422, "invoice_range_exhausted")
    assert error["details"]["errors"][0]["field"] == "invoice"
    assert Sale.objects.count() == 0


def test_the_invoice_breach_is_listed_with_the_other_breaches(pos_client):
    resolution = node_resolution()
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_to + 1)

    response = post(pos_client("N2-CAJA-01"), online_cash(sku="SKU-SANDWICH", price="6500.00", quantity="5"))

    assert response.status_code == 422
    assert codes(response) == ["insufficient_stock", "invoice_range_exhausted"]


def test_the_invoice_breach_is_listed_with_unknown_references_too(pos_client):
    InvoiceResolution.objects.filter(pk=node_resolution().pk).update(active=False)

    response = post(pos_client("N2-CAJA-01"), online_cash(sku="SKU-NO-EXISTE"))

    assert response.status_code == 422
    assert codes(response) == ["unknown_product", "invoice_resolution_missing"]


def test_an_expired_resolution_refuses_the_sale_with_invoice_resolution_expired(pos_client):
    body = online_cash()
    day = sale_day(body)
    InvoiceResolution.objects.filter(pk=node_resolution().pk).update(
        valid_from=day - timedelta(days=60), valid_until=day - timedelta(days=1)
    )

    response = post(pos_client("N2-CAJA-01"), body)

    assert_error_shape(response, 422, "invoice_resolution_expired")
    assert Sale.objects.count() == 0


def test_no_active_resolution_refuses_the_sale_with_invoice_resolution_missing(pos_client):
    InvoiceResolution.objects.filter(pk=institution_resolution().pk).update(active=False)

    response = post(pos_client("N3-CAJA-01"), online_cash(sku="AND-CAFE", price="1800.00"))

    assert_error_shape(response, 422, "invoice_resolution_missing")


def test_a_node_level_sale_may_not_bring_its_own_number(pos_client):
    resolution = node_resolution()
    invoice = {"prefix": "FE", "number": resolution.next_number, "resolution": resolution.number}

    response = post(pos_client("N2-CAJA-01"), online_cash(invoice=invoice))

    assert_error_shape(response, 422, "invalid_invoice_number")
    assert node_resolution().next_number == resolution.next_number


# --- Terminal level: the register numbers, the server checks ---------------------------------


def test_terminal_level_online_sale_with_its_own_valid_number_is_stored_and_advances_the_range(pos_client):
    resolution = own_resolution()
    number = resolution.next_number + 5  # a register may skip ahead (e.g. a voided paper invoice)
    invoice = {"prefix": "FE", "number": number, "resolution": resolution.number}

    response = post(pos_client("N1-CAJA-01"), online_cash(invoice=invoice))

    assert response.status_code == 201, response.json()
    assert response.json()["invoice"] == {
        **invoice,
        "range_from": resolution.range_from,
        "range_to": resolution.range_to,
    }
    assert Sale.objects.get().invoice_source == InvoiceSource.TERMINAL
    resolution.refresh_from_db()
    assert resolution.next_number == number + 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: {"number": r.range_to + 1}, "outside the range"),
        (lambda r: {"resolution": "99999999999"}, "not the register's resolution"),
        (lambda r: {"prefix": "XX"}, "another prefix"),
    ],
)
def test_terminal_level_online_sale_with_an_invalid_own_number_is_refused(pos_client, change, why):
    resolution = own_resolution()
    invoice = {"prefix": "FE", "number": resolution.next_number, "resolution": resolution.number, **change(resolution)}

    response = post(pos_client("N1-CAJA-01"), online_cash(invoice=invoice))

    assert response.json()["error"]["code"] == "invalid_invoice_number", why
    resolution_after = own_resolution()
    assert resolution_after.next_number == resolution.next_number


def test_terminal_level_number_already_used_is_refused_online(pos_client):
    resolution = own_resolution()
    invoice = {"prefix": "FE", "number": resolution.next_number, "resolution": resolution.number}
    client = pos_client("N1-CAJA-01")
    assert post(client, online_cash(invoice=invoice)).status_code == 201

    response = post(client, online_cash(invoice=invoice))

    assert_error_shape(response, 422, "invalid_invoice_number")


def test_terminal_level_number_on_a_day_the_resolution_was_not_valid_is_refused(pos_client):
    resolution = own_resolution()
    invoice = {"prefix": "FE", "number": resolution.next_number, "resolution": resolution.number}
    body = online_cash(invoice=invoice)
    day = sale_day(body)
    InvoiceResolution.objects.filter(pk=resolution.pk).update(
        valid_from=day - timedelta(days=60), valid_until=day - timedelta(days=1)
    )

    response = post(pos_client("N1-CAJA-01"), body)

    assert_error_shape(response, 422, "invalid_invoice_number")


def test_terminal_level_sale_without_a_number_when_its_range_is_exhausted_is_refused(pos_client):
    # The register had no number left to give (the simulator then sends none): the server
    # says why, as it would at node level.
    resolution = own_resolution()
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_to + 1)

    response = post(pos_client("N1-CAJA-01"), online_cash())

    assert_error_shape(response, 422, "invoice_range_exhausted")


def test_terminal_level_sale_without_a_number_is_accepted_unnumbered_like_offline(pos_client):
    response = post(pos_client("N1-CAJA-01"), online_cash())

    assert response.status_code == 201
    assert response.json()["invoice"] is None


# --- Comandas ------------------------------------------------------------------------------


def test_online_comanda_is_visible_to_the_kitchen_at_once(pos_client):
    # Given an online sale of an arepa (needs preparation) and a juice
    body = sale(
        offline=False,
        customer=None,
        known_balance=None,
        lines=[
            {"sku": "SKU-AREPA", "quantity": "2", "unit_price": "3200.00"},
            {"sku": "SKU-JUGO", "quantity": "1", "unit_price": "3000.00"},
        ],
        payments=[{"method": "cash", "amount": "9400.00"}],
    )
    assert post(pos_client("N1-CAJA-01"), body).status_code == 201

    # When the kitchen looks, before any reconciliation ran
    assert Sale.objects.get(pk=body["id"]).reconciled_at is None
    comandas = pos_client("N1-COCINA-01").get(KITCHEN_URL, {"status": "pending"}).json()["comandas"]

    # Then the comanda is there, not late, with only the arepa
    assert len(comandas) == 1
    assert comandas[0]["sale_id"] == body["id"]
    assert comandas[0]["late"] is False
    assert comandas[0]["items"] == [{"sku": "SKU-AREPA", "name": "Arepa con queso", "quantity": "2.000"}]

    # And reconciliation finds it already there
    assert sales_reconcile(sale_ids=[body["id"]]) == 1
    assert Comanda.objects.filter(sale_id=body["id"]).count() == 1
    assert Comanda.objects.get(sale_id=body["id"]).items == comandas[0]["items"]


def test_a_refused_online_sale_sends_nothing_to_the_kitchen(pos_client):
    body = online_cash(sku="SKU-SANDWICH", price="6500.00", quantity="5")

    assert post(pos_client("N1-CAJA-01"), body).status_code == 422

    assert Comanda.objects.count() == 0
