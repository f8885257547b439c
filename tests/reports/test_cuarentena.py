"""«Cuarentena»: list, filters, escaped payload, reprocess through the real ingest, discard."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import Product
from sales.ingest import SANITIZED_MARKER
from sales.models import QuarantinedSale, QuarantineStatus, Sale, SequenceGap
from sales.quarantine import QuarantineError, quarantined_sale_discard, quarantined_sale_reprocess
from tests.reports.exports import csv_rows, xlsx_rows
from tests.reports.report_data import sale_payload, sales_upload

URL = "/admin/reportes/cuarentena/"


def test_lists_errors_and_the_escaped_payload(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL)
    page = response.content.decode()
    assert response.context["row_count"] == 3
    assert "Producto desconocido: SKU-NO-EXISTE." in page
    assert "lines[0].sku" in page
    assert "Cliente desconocido: C-&lt;b&gt;ñandú&lt;/b&gt;." in page
    # The payload is pretty JSON and escaped: a terminal's text never becomes markup.
    assert "C-&lt;b&gt;ñandú&lt;/b&gt;" in page
    assert "<b>ñandú</b>" not in page
    assert "&quot;lines&quot;: [" in page
    assert dict(response.context["status_counts"]) == {"Pendiente": 2, "Reprocesada": 0, "Descartada": 1}
    assert "Reprocesar" in page
    assert "Descartar" in page


def test_filters_by_status_terminal_and_error_code(client, finance_user, scenario):
    client.force_login(finance_user)

    def ids(**params):
        return {row.pk for row in client.get(URL, params).context["page_obj"]}

    q = scenario.quarantined
    assert ids(status="pending") == {q["unknown_product"].pk, q["totals"].pk}
    assert ids(terminal=scenario.terminals["N3-CAJA-01"].pk) == {q["totals"].pk, q["discarded"].pk}
    assert ids(error_code="unknown_product") == {q["unknown_product"].pk}
    assert ids(q=q["totals"].sale_id[:8]) == {q["totals"].pk}
    choices = [value for value, _ in client.get(URL).context["form"].fields["error_code"].choices]
    assert choices == ["", "conflict", "totals_mismatch", "unknown_customer", "unknown_product"]


def test_exports(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = csv_rows(client.get(URL, {"format": "csv", "error_code": "unknown_product"}))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert "ñandú" in row["Contenido recibido"]
    assert row["Estado"] == "Pendiente"
    assert "Producto desconocido: SKU-NO-EXISTE." in row["Errores"]
    sheet = xlsx_rows(client.get(URL, {"format": "xlsx"}).content)
    assert len(sheet) == 1 + 3 + 1
    assert sheet[-1][0] == "Total (3 filas)"


def _unknown_product_sale(scenario, sku="SKU-BROWNIE"):
    """Caja 1 sells a product Datos Base has not created yet: the ingest quarantines it."""
    terminal = scenario.terminals["N1-CAJA-01"]
    payload = sale_payload(
        seq=12,
        occurred_at=timezone.now() - timedelta(minutes=3),
        lines=[{"sku": sku, "quantity": "2", "unit_price": "3000.00"}],
        payments=[("cash", 6000)],
    )
    (outcome,) = sales_upload(terminal=terminal, sales=[payload]).results
    assert outcome["status"] == "rejected"
    assert [e["code"] for e in outcome["errors"]] == ["unknown_product"]
    return payload, QuarantinedSale.objects.get(sale_id=payload["id"])


def _product_created_by_data_staff(client, user, scenario, sku="SKU-BROWNIE"):
    """Datos Base adds the product in the admin, as staff do."""
    client.force_login(user)
    institution = scenario.terminals["N1-CAJA-01"].node.institution
    response = client.post(
        "/admin/inventory/product/add/",
        {
            "institution": institution.pk,
            "sku": sku,
            "name": "Brownie de chocolate",
            "price": "3000.00",
            "unit_type": "",
            "active": "on",
            "stock-TOTAL_FORMS": "0",
            "stock-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    client.logout()
    return Product.objects.get(institution=institution, sku=sku)


def test_unknown_product_is_accepted_and_reconciled_after_staff_create_it(
    client, data_staff_user, finance_user, scenario, django_capture_on_commit_callbacks
):
    # Given a sale quarantined because its product did not exist
    payload, row = _unknown_product_sale(scenario)
    assert row.error_codes == "unknown_product"
    # and Datos Base has created the product since
    _product_created_by_data_staff(client, data_staff_user, scenario)

    # When finance reprocesses it from the report (the reconcile task runs on commit)
    client.force_login(finance_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}{row.pk}/reprocesar/", {"next": URL})
    assert response.status_code == 302

    # Then the sale is stored as the terminal sent it, and reconciled
    sale = Sale.objects.get(pk=payload["id"])
    assert sale.terminal == scenario.terminals["N1-CAJA-01"]
    assert sale.seq == 12
    assert sale.total == 6000
    assert sale.reconciled_at is not None
    # and the row shows it was reprocessed, by whom, into which sale
    row.refresh_from_db()
    assert row.status == QuarantineStatus.REPROCESSED
    assert row.resulting_sale == sale
    assert row.processed_by == finance_user
    assert row.processed_at is not None
    assert f"reprocesada por {finance_user.username}: aceptada" in row.note
    page = client.get(URL, {"status": "reprocessed"}).content.decode()
    assert "Reprocesada" in page
    assert f"/admin/sales/sale/{sale.pk}/change/" in page

    # And reprocessing again is refused and changes nothing
    with pytest.raises(QuarantineError, match="ya fue procesada"):
        quarantined_sale_reprocess(quarantined=row, user=finance_user)
    response = client.post(f"{URL}{row.pk}/reprocesar/", {"next": URL})
    assert response.status_code == 302
    assert Sale.objects.filter(pk=payload["id"]).count() == 1
    assert QuarantinedSale.objects.filter(sale_id=payload["id"]).count() == 1


def test_reprocess_after_the_terminal_resent_it_counts_as_done(client, data_staff_user, finance_user, scenario):
    # Given the quarantined sale, the product created, and the terminal's own retry accepted
    payload, row = _unknown_product_sale(scenario)
    _product_created_by_data_staff(client, data_staff_user, scenario)
    (outcome,) = sales_upload(terminal=row.terminal, sales=[payload]).results
    assert outcome["status"] == "accepted"

    # When finance reprocesses the quarantined copy
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)

    # Then the ingest answers duplicate: the row is done and points at the one stored sale
    assert result.status == QuarantineStatus.REPROCESSED
    assert result.resulting_sale_id == uuid.UUID(payload["id"])
    assert result.processed_by == finance_user
    assert "ya estaba registrada" in result.note
    assert Sale.objects.filter(pk=payload["id"]).count() == 1


def test_reprocess_rejected_again_stays_pending_with_one_row(scenario, finance_user):
    # Given Caja 1's sale with an unknown product and an unknown customer (seq 10)
    row = scenario.quarantined["unknown_product"]
    assert row.error_codes == "unknown_customer,unknown_product"

    # When finance reprocesses it before anything was fixed
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)

    # Then it stays pending, the attempt is noted, and the ingest added no second row
    assert result.status == QuarantineStatus.PENDING
    assert result.error_codes == "unknown_customer,unknown_product"
    assert f"reprocesada por {finance_user.username}: rechazada de nuevo" in result.note
    assert QuarantinedSale.objects.filter(sale_id=row.sale_id).count() == 1
    # and seq 10 is still missing for Caja 1
    assert SequenceGap.objects.filter(terminal=row.terminal, first_missing=10, last_missing=10).exists()


def test_reprocess_rejected_with_other_errors_keeps_one_pending_row(scenario, finance_user):
    # Given the product now exists but the customer still does not
    row = scenario.quarantined["unknown_product"]
    Product.objects.create(
        institution=row.terminal.node.institution, sku="SKU-NO-EXISTE", name="Producto nuevo", price="1000.00"
    )

    # When finance reprocesses it
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)

    # Then the row carries the new errors and stays the one pending row for the sale; the
    # ingest's own quarantine copy is kept as a discarded copy (nothing is deleted)
    assert result.status == QuarantineStatus.PENDING
    assert result.error_codes == "unknown_customer"
    assert [e["field"] for e in result.errors] == ["customer"]
    rows = QuarantinedSale.objects.filter(sale_id=row.sale_id)
    assert rows.filter(status=QuarantineStatus.PENDING).get() == result
    copy = rows.exclude(pk=row.pk).get()
    assert copy.status == QuarantineStatus.DISCARDED
    assert copy.processed_by == finance_user
    assert f"cuarentena #{row.pk}" in copy.note


def test_reprocess_resends_a_sanitized_payload_as_the_terminal_sent_it(scenario, finance_user):
    # Given a sale whose text had a NUL character (stored wrapped: jsonb cannot hold it)
    terminal = scenario.terminals["N1-CAJA-01"]
    payload = sale_payload(
        seq=13,
        occurred_at=timezone.now(),
        lines=[{"sku": "SKU-FRUTA\x00", "quantity": "1", "unit_price": "1500.00"}],
        payments=[("cash", 1500)],
    )
    (outcome,) = sales_upload(terminal=terminal, sales=[payload]).results
    row = QuarantinedSale.objects.get(sale_id=payload["id"])
    assert row.raw_payload[SANITIZED_MARKER] is True

    # When finance reprocesses it
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)

    # Then the ingest judged the original sale again (same errors), not the wrapper
    assert result.errors == outcome["errors"]
    assert QuarantinedSale.objects.filter(sale_id=payload["id"]).count() == 1


def test_reprocess_or_discard_a_processed_row_is_refused(scenario, finance_user):
    row = scenario.quarantined["discarded"]
    with pytest.raises(QuarantineError):
        quarantined_sale_reprocess(quarantined=row, user=finance_user)
    with pytest.raises(QuarantineError):
        quarantined_sale_discard(quarantined=row, user=finance_user, note="otra vez")
    assert QuarantinedSale.objects.filter(sale_id=row.sale_id).count() == 1


def test_discard_needs_a_note_and_keeps_the_row(scenario, finance_user):
    row = scenario.quarantined["totals"]
    with pytest.raises(QuarantineError, match="por qué"):
        quarantined_sale_discard(quarantined=row, user=finance_user, note=" ")
    result = quarantined_sale_discard(quarantined=row, user=finance_user, note="Venta de prueba del técnico")
    assert result.status == QuarantineStatus.DISCARDED
    assert result.processed_by == finance_user
    assert "Venta de prueba" in result.note
    assert result.raw_payload == row.raw_payload


def test_reprocess_and_discard_from_the_page(client, finance_user, scenario):
    client.force_login(finance_user)
    # Payments that do not add up are rejected again: the row stays pending, with a message.
    row = scenario.quarantined["totals"]
    response = client.post(f"{URL}{row.pk}/reprocesar/", {"next": URL + "?status=pending"}, follow=True)
    assert response.redirect_chain == [(URL + "?status=pending", 302)]
    assert len(list(response.context["messages"])) == 1
    row.refresh_from_db()
    assert row.status == QuarantineStatus.PENDING
    assert "rechazada de nuevo" in row.note
    assert client.get(f"{URL}{row.pk}/reprocesar/").status_code == 405  # POST only

    other = scenario.quarantined["unknown_product"]
    form = client.get(f"{URL}{other.pk}/descartar/")
    assert form.status_code == 200
    assert "C-&lt;b&gt;ñandú&lt;/b&gt;" in form.content.decode()
    assert client.post(f"{URL}{other.pk}/descartar/", {"note": ""}).status_code == 200  # note required
    other.refresh_from_db()
    assert other.status == QuarantineStatus.PENDING
    response = client.post(f"{URL}{other.pk}/descartar/", {"note": "Producto retirado del catálogo"})
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.status == QuarantineStatus.DISCARDED
    assert other.processed_by == finance_user
    assert other.raw_payload["customer"] == "C-<b>ñandú</b>"
