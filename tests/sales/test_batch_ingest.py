"""POST /api/v1/pos/sales/batches: partial acceptance, idempotency, quarantine, flags."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Customer, InvoiceResolution
from inventory.models import NodeStock
from nodes.models import Terminal
from sales.ingest import quarantine_payload_decode
from sales.models import QuarantinedSale, Sale, SaleFlag, UploadBatch
from tests.sales.payloads import BATCHES_URL, ONLINE_URL, assert_error_shape, batch, cash_sale, sale

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post(BATCHES_URL, body, format="json")


def test_accepted_batch_stores_sales_lines_payments_and_batch(pos_client):
    # Given two well-formed offline sales
    first, second = sale(), cash_sale()
    # When the register uploads them
    response = post(pos_client("N1-CAJA-01"), batch(first, second))
    # Then both are accepted and stored with what the terminal sent
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 0)
    assert [r["id"] for r in body["results"]] == [first["id"], second["id"]]
    assert all(r["status"] == "accepted" for r in body["results"])
    stored = Sale.objects.get(pk=first["id"])
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    assert stored.terminal == terminal
    assert stored.node == terminal.node
    assert stored.institution_id == terminal.node.institution_id
    assert stored.total == Decimal("7000.00")
    assert stored.known_balance == Decimal("12000.00")
    assert stored.seq == first["seq"]
    assert stored.offline is True
    assert stored.business_date == timezone.localtime(stored.occurred_at).date()
    assert stored.customer.code == "C-000123"
    assert [(line.product.sku, line.quantity, line.total) for line in stored.lines.all()] == [
        ("SKU-EMPANADA", Decimal("2.000"), Decimal("7000.00"))
    ]
    assert [(p.method, p.amount) for p in stored.payments.all()] == [("paygo", Decimal("7000.00"))]
    assert stored.reconciled_at is None
    assert stored.invoice_number is None
    upload = UploadBatch.objects.get()
    assert (upload.sales_count, upload.accepted, upload.duplicates, upload.rejected) == (2, 2, 0, 0)
    assert stored.batch == upload
    terminal.refresh_from_db()
    assert terminal.last_upload_at is not None
    assert terminal.last_seen_at is not None


def test_ingest_does_not_move_stock_or_balances(pos_client):
    # Reconciliation applies effects in time order; ingest only stores.
    before_stock = NodeStock.objects.get(node__code="N1", product__sku="SKU-EMPANADA").quantity
    before_balance = Customer.objects.get(code="C-000123").balance
    post(pos_client(), batch(sale()))
    assert NodeStock.objects.get(node__code="N1", product__sku="SKU-EMPANADA").quantity == before_stock
    assert Customer.objects.get(code="C-000123").balance == before_balance


def test_same_batch_again_is_all_duplicates_and_stores_nothing_new(pos_client):
    client = pos_client()
    body = batch(sale(), cash_sale())
    post(client, body)
    # When the answer was lost and the register sends the batch again
    response = post(client, body)
    # Then every sale is a duplicate and nothing new is stored
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (0, 2, 0)
    assert {r["status"] for r in result["results"]} == {"duplicate"}
    assert Sale.objects.count() == 2
    assert QuarantinedSale.objects.count() == 0


def test_same_id_with_other_content_is_a_conflict_and_the_first_version_stays(pos_client):
    client = pos_client()
    original = sale()
    post(client, batch(original))
    changed = {**original, "lines": [{"sku": "SKU-EMPANADA", "quantity": "1", "unit_price": "3500.00"}]}
    changed["payments"] = [{"method": "paygo", "amount": "3500.00"}]

    response = post(client, batch(changed))

    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert [e["code"] for e in result["errors"]] == ["conflict"]
    assert Sale.objects.get(pk=original["id"]).total == Decimal("7000.00")
    quarantined = QuarantinedSale.objects.get()
    assert quarantined.error_codes == "conflict"
    assert quarantined.raw_payload == changed


def test_a_stored_sale_sent_again_answers_as_stored_even_if_its_checks_fail_now(pos_client):
    # Given a stored sale whose customer code has changed since (the checks refuse it now)
    client = pos_client()
    original = sale()
    assert post(client, batch(original)).json()["accepted"] == 1
    Customer.objects.filter(code="C-000123").update(code="C-000123-OLD")
    # When it is sent again, with a changed copy and a new sale for the old code
    changed = {**original, "id": str(uuid.uuid4())}
    other = {**original, "known_balance": "1.00", "id": original["id"]}
    results = post(client, batch(original, changed)).json()["results"]
    # Then the stored one is a duplicate and only the new one is refused by the checks
    assert [r["status"] for r in results] == ["duplicate", "rejected"]
    assert [e["code"] for e in results[1]["errors"]] == ["unknown_customer"]
    # And another content under the stored id is a conflict, not a check failure
    conflict = post(client, batch(other)).json()["results"][0]
    assert [e["code"] for e in conflict["errors"]] == ["conflict"]
    assert Sale.objects.filter(pk=uuid.UUID(original["id"])).count() == 1


def test_a_new_batch_reads_no_stored_sales(pos_client, django_assert_max_num_queries):
    # Whether a sale is stored is asked only of those the insert skips: a batch of new
    # sales reads nothing from the sales table, and costs the same queries at 2 or 40 sales.
    client = pos_client()
    counts = []
    for size in (2, 40):
        with django_assert_max_num_queries(40) as captured:
            response = post(client, batch(*[cash_sale() for _ in range(size)]))
        assert response.json()["accepted"] == size
        reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
        assert not [sql for sql in reads if 'FROM "sales_sale"' in sql], reads
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_equivalent_encodings_of_one_sale_are_duplicates(pos_client):
    client = pos_client()
    original = sale()
    post(client, batch(original))
    # Same instant in UTC, same quantity written differently: the same sale.
    occurred = datetime.fromisoformat(original["occurred_at"]).astimezone(UTC)
    same = {
        **original,
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "lines": [{"sku": "SKU-EMPANADA", "quantity": "2.000", "unit_price": "3500.00"}],
    }
    assert post(client, batch(same)).json()["results"][0]["status"] == "duplicate"


def test_every_spelling_of_a_sale_id_is_the_same_sale(pos_client):
    # Uppercase, without hyphens, in braces: the sale is stored, answered and hashed under
    # its canonical id (lowercase, hyphenated), and each other spelling is a duplicate.
    client = pos_client()
    original = sale()
    canonical = original["id"]
    upper = {**original, "id": canonical.upper()}
    result = post(client, batch(upper)).json()["results"][0]
    assert result == {"id": canonical, "status": "accepted", "flags": result["flags"]}
    stored = Sale.objects.get(pk=uuid.UUID(canonical))
    for spelling in (canonical, canonical.replace("-", ""), canonical.replace("-", "").upper()):
        again = post(client, batch({**original, "id": spelling})).json()["results"][0]
        assert (again["id"], again["status"]) == (canonical, "duplicate")
    assert Sale.objects.get(pk=stored.pk).payload_hash == stored.payload_hash
    assert Sale.objects.filter(terminal__code="N1-CAJA-01").count() == 1


def test_one_bad_sale_does_not_block_the_others(pos_client):
    good_before, good_after = sale(), cash_sale()
    bad = sale(lines=[{"sku": "SKU-NO-EXISTE", "quantity": "1", "unit_price": "100.00"}])
    response = post(pos_client(), batch(good_before, bad, good_after))
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "rejected", "accepted"]
    assert Sale.objects.filter(pk__in=[good_before["id"], good_after["id"]]).count() == 2
    assert QuarantinedSale.objects.get().sale_id == bad["id"]


def _units_sale(**overrides):
    body = {
        "lines": [{"sku": "SKU-ALMUERZO", "quantity": "1", "unit_price": "0.00"}],
        "payments": [{"method": "units", "amount": "1", "unit_type": "ALMUERZO"}],
    }
    return sale(**{**body, **overrides})


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"lines": [{"sku": "SKU-NADA", "quantity": "1", "unit_price": "1.00"}]}, "unknown_product", "lines[0].sku"),
        ({"customer": "C-999999"}, "unknown_customer", "customer"),
        ({"payments": [{"method": "paygo", "amount": "6999.99"}]}, "totals_mismatch", "payments"),
        (
            {
                "lines": [{"sku": "SKU-EMPANADA", "quantity": "0", "unit_price": "3500.00"}],
                "payments": [{"method": "cash", "amount": "0.00"}],
            },
            "invalid_quantity",
            "lines[0].quantity",
        ),
        (
            {
                "lines": [{"sku": "SKU-EMPANADA", "quantity": "-1", "unit_price": "3500.00"}],
                "payments": [{"method": "cash", "amount": "0.00"}],
            },
            "invalid_quantity",
            "lines[0].quantity",
        ),
        ({"occurred_at": "2026-11-28T12:01:02"}, "malformed", "occurred_at"),
        ({"id": "not-a-uuid"}, "malformed", "id"),
        ({"seq": "12"}, "malformed", "seq"),
        ({"lines": []}, "malformed", "lines"),
        (
            {"lines": [{"sku": "SKU-EMPANADA", "quantity": "2", "unit_price": "3500.001"}]},
            "malformed",
            "lines[0].unit_price",
        ),
        (
            {"lines": [{"sku": "SKU-EMPANADA", "quantity": "0.0001", "unit_price": "3500.00"}]},
            "malformed",
            "lines[0].quantity",
        ),
        (
            {"lines": [{"sku": "SKU-EMPANADA", "quantity": "1" * 50, "unit_price": "3500.00"}]},
            "malformed",
            "lines[0].quantity",
        ),
        ({"payments": [{"method": "bitcoin", "amount": "7000.00"}]}, "malformed", "payments[0].method"),
        ({"payments": [{"method": "paygo", "amount": 7000.5}]}, "malformed", "payments[0].amount"),
        ({"lines": [{"sku": "SKU-\u0000", "quantity": "2", "unit_price": "3500.00"}]}, "malformed", "lines[0].sku"),
        ({"offline": "yes"}, "malformed", "offline"),
        (
            {"customer": None, "known_balance": None},
            "malformed",
            "customer",
        ),
    ],
)
def test_each_rejection_code_is_reported_with_its_field_and_quarantined(pos_client, changes, code, field):
    bad = sale(**changes)
    response = post(pos_client(), batch(bad))
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert (result["errors"][0]["code"], result["errors"][0]["field"]) == (code, field), result
    assert result["errors"][0]["message"]
    quarantined = QuarantinedSale.objects.get()
    assert code in quarantined.error_codes.split(",")
    assert quarantine_payload_decode(quarantined.raw_payload) == bad
    assert Sale.objects.count() == 0


def test_units_totals_rules(pos_client):
    ok = _units_sale()
    priced = _units_sale(lines=[{"sku": "SKU-ALMUERZO", "quantity": "1", "unit_price": "12000.00"}])
    short = _units_sale(payments=[{"method": "units", "amount": "2", "unit_type": "ALMUERZO"}])
    no_customer = _units_sale(customer=None, known_balance=None)
    results = post(pos_client(), batch(ok, priced, short, no_customer)).json()["results"]
    assert results[0]["status"] == "accepted"
    assert "units_offline" in results[0]["flags"]
    assert {e["code"] for e in results[1]["errors"]} == {"totals_mismatch"}
    assert {e["field"] for e in results[1]["errors"]} >= {"lines[0].unit_price"}
    assert results[2]["errors"][0] == {
        "code": "totals_mismatch",
        "field": "payments[0].amount",
        "message": results[2]["errors"][0]["message"],
    }
    assert results[3]["errors"][0]["code"] == "malformed"
    assert results[3]["errors"][0]["field"] == "customer"


def test_quarantine_keeps_the_raw_payload_errors_terminal_and_batch(pos_client):
    bad = sale(customer="C-NOPE", note="cliente nuevo \u0000 con NUL", extra={"ñ": ["ü", 1, None]})
    received_before = timezone.now()
    post(pos_client("N1-CAJA-02"), batch(bad))
    quarantined = QuarantinedSale.objects.get()
    assert quarantined.terminal.code == "N1-CAJA-02"
    assert quarantined.batch == UploadBatch.objects.get()
    assert quarantined.received_at >= received_before
    assert quarantined.sale_id == bad["id"]
    assert quarantined.errors[0]["code"] == "unknown_customer"
    assert quarantined.error_codes == "unknown_customer"
    assert quarantined.status == "pending"
    # NUL cannot live in jsonb: stored escaped, and the original is recoverable exactly.
    assert "\u0000" not in str(quarantined.raw_payload)
    assert quarantine_payload_decode(quarantined.raw_payload) == bad


def test_a_retried_batch_does_not_quarantine_the_same_rejected_sale_twice(pos_client):
    body = batch(sale(customer="C-NOPE"))
    post(pos_client(), body)
    post(pos_client(), body)
    assert QuarantinedSale.objects.count() == 1


def test_non_object_and_id_less_sales_are_quarantined_too(pos_client):
    response = post(pos_client(), batch(42, "venta", None, {"seq": 1}))
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert [r["id"] for r in results] == [None] * 4
    stored = [quarantine_payload_decode(p) for p in QuarantinedSale.objects.values_list("raw_payload", flat=True)]
    assert sorted(map(repr, stored)) == sorted(map(repr, [42, "venta", None, {"seq": 1}]))


def test_batch_over_500_sales_is_refused_whole(pos_client):
    response = post(pos_client(), batch(*[cash_sale() for _ in range(501)]))
    assert_error_shape(response, 413, "batch_too_large")
    assert Sale.objects.count() == 0
    assert QuarantinedSale.objects.count() == 0
    assert UploadBatch.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"batch_id": str(uuid.uuid4()), "sales": {"no": "list"}},
        {"batch_id": "lote-1", "sales": []},
        {"sales": []},
        [],
        "texto",
    ],
)
def test_a_malformed_envelope_is_a_400_in_the_error_shape(pos_client, body):
    response = post(pos_client(), body)
    assert_error_shape(response, 400)
    assert UploadBatch.objects.count() == 0


def test_other_institutions_products_and_customers_are_unknown(pos_client):
    # AND-CAFE and E-000100 exist, but in EMP-ANDINA; N1-CAJA-01 belongs to COL-SANJOSE.
    foreign_product = cash_sale(sku="AND-CAFE", price="1800.00")
    foreign_customer = sale(customer="E-000100")
    results = post(pos_client("N1-CAJA-01"), batch(foreign_product, foreign_customer)).json()["results"]
    assert results[0]["errors"][0]["code"] == "unknown_product"
    assert results[1]["errors"][0]["code"] == "unknown_customer"


def test_kitchen_key_cannot_post_sales(pos_client):
    response = post(pos_client("N1-COCINA-01"), batch(cash_sale()))
    assert_error_shape(response, 403, "permission_denied")
    assert Sale.objects.count() == 0


def test_missing_or_unknown_key_is_401(client):
    response = client.post(BATCHES_URL, batch(), content_type="application/json")
    assert_error_shape(response, 401)
    response = client.post(BATCHES_URL, batch(), content_type="application/json", HTTP_AUTHORIZATION="Bearer pgt_nope")
    assert_error_shape(response, 401)


# --- Ingest-time flags -----------------------------------------------------------------------


def _flags(response, index=0):
    return response.json()["results"][index]["flags"]


def test_flags_known_at_ingest_are_recorded(pos_client):
    blocked = sale(
        lines=[{"sku": "SKU-GASEOSA", "quantity": "1", "unit_price": "2500.00"}],
        payments=[{"method": "paygo", "amount": "2500.00"}],
    )
    cheap = cash_sale(sku="SKU-JUGO", price="2000.00")
    future = cash_sale(occurred_at=(timezone.now() + timedelta(hours=2)).isoformat())
    ancient = cash_sale(occurred_at=(timezone.now() - timedelta(days=60)).isoformat())
    response = post(pos_client(), batch(blocked, cheap, future, ancient))
    assert "blocked_product" in _flags(response, 0)
    assert _flags(response, 1) == ["price_mismatch"]
    assert _flags(response, 2) == ["clock_skew"]
    assert _flags(response, 3) == ["clock_skew"]
    flag = SaleFlag.objects.get(sale_id=blocked["id"], code="blocked_product")
    assert flag.detail["sku"] == "SKU-GASEOSA"
    assert flag.detail["field"] == "lines[0].sku"


def test_node_without_offline_permissions_flags_closed_inventory_and_unverified_balance(pos_client):
    # N2 has both offline flags off.
    response = post(pos_client("N2-CAJA-01"), batch(sale()))
    assert set(_flags(response)) == {"offline_not_allowed", "balance_unverified"}


def test_kiosk_selling_offline_is_flagged(pos_client):
    response = post(pos_client("N1-KIOSCO-01"), batch(cash_sale()))
    assert _flags(response) == ["self_service_offline"]


def test_running_state_flags_are_left_to_reconciliation(pos_client):
    # 50 sandwiches with 4 in stock and far beyond Ana's balance: not flagged at ingest.
    huge = sale(
        lines=[{"sku": "SKU-SANDWICH", "quantity": "50", "unit_price": "6500.00"}],
        payments=[{"method": "paygo", "amount": "325000.00"}],
    )
    flags = _flags(post(pos_client(), batch(huge)))
    assert not {"negative_stock", "overdraft_exceeded", "daily_max_exceeded"} & set(flags)


# --- Terminal-level invoices ------------------------------------------------------------------


def _resolution(code="N1-CAJA-01"):
    return InvoiceResolution.objects.get(terminal__code=code)


def _invoiced(resolution, number, **overrides):
    return sale(invoice={"prefix": resolution.prefix, "number": number, "resolution": resolution.number}, **overrides)


def test_terminal_numbered_invoices_are_stored_and_advance_the_resolution(pos_client):
    resolution = _resolution()
    first, second = (
        _invoiced(resolution, resolution.range_from + 10),
        _invoiced(resolution, resolution.range_from + 3),
    )
    response = post(pos_client(), batch(first, second))
    assert response.json()["accepted"] == 2
    stored = Sale.objects.get(pk=first["id"])
    assert (stored.invoice_resolution, stored.invoice_number, stored.invoice_prefix, stored.invoice_source) == (
        resolution,
        resolution.range_from + 10,
        "FE",
        "terminal",
    )
    resolution.refresh_from_db()
    assert resolution.next_number == resolution.range_from + 11
    # Same batch again: duplicates, and the numbers are not "already used" by themselves.
    assert post(pos_client(), batch(first, second)).json()["duplicates"] == 2


def test_invalid_invoice_numbers_are_rejected(pos_client):
    resolution = _resolution()
    other_terminal = _resolution("N1-CAJA-02")
    used = _invoiced(resolution, resolution.range_from)
    post(pos_client(), batch(used))
    cases = [
        _invoiced(resolution, resolution.range_from),  # already used by another sale
        _invoiced(resolution, resolution.range_to + 1),  # outside the range
        _invoiced(other_terminal, other_terminal.range_from),  # another register's resolution
        _invoiced(resolution, resolution.range_from + 50),  # the same number twice in one batch:
        _invoiced(resolution, resolution.range_from + 50),
    ]
    results = post(pos_client(), batch(*cases)).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "accepted", "rejected"]
    for result in (results[0], results[1], results[2], results[4]):
        assert result["errors"][0]["code"] == "invalid_invoice_number"
    assert QuarantinedSale.objects.filter(error_codes="invalid_invoice_number").count() == 4


def test_inactive_resolution_and_node_level_numbering_reject_invoices(pos_client):
    resolution = _resolution()
    InvoiceResolution.objects.filter(pk=resolution.pk).update(active=False)
    inactive = _invoiced(resolution, resolution.range_from)
    n2 = InvoiceResolution.objects.get(node__code="N2", level="node")
    node_level = _invoiced(n2, n2.range_from)
    assert post(pos_client(), batch(inactive)).json()["results"][0]["errors"][0]["code"] == "invalid_invoice_number"
    result = post(pos_client("N2-CAJA-01"), batch(node_level)).json()["results"][0]
    assert result["errors"][0]["code"] == "invalid_invoice_number"


def test_sales_without_invoice_at_node_level_stay_unnumbered(pos_client):
    post(pos_client("N2-CAJA-01"), batch(cash_sale()))
    stored = Sale.objects.get()
    assert stored.invoice_number is None
    assert stored.invoice_resolution is None
    assert stored.invoice_source == ""


# --- Set-based -----------------------------------------------------------------------------------


def _mixed_sale(i: int) -> dict:
    skus = [("SKU-EMPANADA", "3500.00"), ("SKU-JUGO", "3000.00"), ("SKU-AGUA", "2000.00"), ("SKU-FRUTA", "1500.00")]
    lines = [{"sku": skus[j % 4][0], "quantity": "1", "unit_price": skus[j % 4][1]} for j in range(1 + i % 5)]
    total = sum(Decimal(line["unit_price"]) for line in lines)
    customer = ["C-000123", "C-000200", "C-000201", None][i % 4]
    method = "cash" if customer is None else "paygo"
    return sale(customer=customer, lines=lines, payments=[{"method": method, "amount": f"{total:.2f}"}])


def test_query_count_of_a_500_sale_batch_does_not_grow_with_its_size(pos_client, django_assert_max_num_queries):
    client = pos_client()
    resolution = _resolution()
    sales = [_mixed_sale(i) for i in range(500)]
    for i in range(0, 500, 10):
        sales[i]["invoice"] = {"prefix": "FE", "number": resolution.range_from + i, "resolution": resolution.number}
    sales[7]["customer"] = "C-DESCONOCIDO"  # a rejection too, to count the quarantine
    with django_assert_max_num_queries(40) as captured:
        response = post(client, batch(*sales))
    assert response.json()["accepted"] == 499, response.json()["results"][7]
    print(f"\n500-sale batch (new): {len(captured)} queries")
    with django_assert_max_num_queries(40) as captured:
        response = post(client, batch(*sales))
    assert response.json()["duplicates"] == 499
    print(f"500-sale batch (retry): {len(captured)} queries")


def test_a_batch_is_stored_at_the_node_the_ap_belongs_to_when_it_is_written(demo):
    from nodes.models import Node
    from sales.ingest import sale_batch_ingest

    # Given an AP read when its key was checked, and moved to N2 (it had no sales) since
    checked = Terminal.objects.select_related("node").get(code="N1-CAJA-02")
    Terminal.objects.filter(pk=checked.pk).update(node=Node.objects.get(code="N2"))

    # When its batch is stored with what was read then
    result = sale_batch_ingest(terminal=checked, batch_id=str(uuid.uuid4()), sales=[cash_sale(), cash_sale()])

    # Then the sales carry the node the AP belongs to now
    assert result.accepted == 2
    assert set(Sale.objects.filter(terminal=checked).values_list("node__code", flat=True)) == {"N2"}
    assert checked.node.code == "N2"


@pytest.mark.parametrize(
    ("url", "body"),
    [(BATCHES_URL, batch(cash_sale(), cash_sale())), (ONLINE_URL, cash_sale(offline=False))],
    ids=["batch", "online"],
)
def test_an_ap_deleted_after_its_key_was_checked_gets_401_and_nothing_is_stored(pos_client, monkeypatch, url, body):
    from sales import ingest

    # Given an AP with no sales, deleted (and its key with it) once its request is authenticated
    sale_parse = ingest._sale_parse

    def deleted_meanwhile(*args, **kwargs):
        InvoiceResolution.objects.filter(terminal__code="N1-CAJA-02").delete()
        Terminal.objects.filter(code="N1-CAJA-02").delete()
        return sale_parse(*args, **kwargs)

    client = pos_client("N1-CAJA-02")
    monkeypatch.setattr(ingest, "_sale_parse", deleted_meanwhile)

    # When its sales reach the transaction that stores them
    response = client.post(url, body, format="json")

    # Then it is told its key is gone, in the error shape, and nothing is stored under it
    assert_error_shape(response, 401, "authentication_failed")
    assert not Terminal.objects.filter(code="N1-CAJA-02").exists()
    assert not Sale.objects.exists()
    assert not UploadBatch.objects.exists()
    assert not QuarantinedSale.objects.exists()
