"""«Cuarentena»: list, filters, escaped payload, reprocess through the ingest, discard."""

import sys
import types
import uuid

import pytest

from sales.models import QuarantinedSale, QuarantineStatus
from sales.quarantine import QuarantineError, quarantined_sale_discard, quarantined_sale_reprocess
from tests.reports.exports import csv_rows, xlsx_rows
from tests.reports.report_data import sale_record

URL = "/admin/reportes/cuarentena/"


@pytest.fixture
def fake_ingest(monkeypatch):
    """Stands in for ``sales.ingest`` (on the ingest branch): records calls, answers as told."""
    calls = []
    module = types.ModuleType("sales.ingest")
    module.answer = None

    def sale_batch_ingest(*, terminal, batch_id, sales, received_at=None):
        calls.append({"terminal": terminal, "batch_id": batch_id, "sales": sales, "received_at": received_at})
        return module.answer(terminal, sales)

    module.sale_batch_ingest = sale_batch_ingest
    module.calls = calls
    monkeypatch.setitem(sys.modules, "sales.ingest", module)
    return module


def test_lists_errors_and_the_escaped_payload(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL)
    page = response.content.decode()
    assert response.context["row_count"] == 3
    assert "Producto «SKU-NO-EXISTE» desconocido" in page
    assert "lines[0].sku" in page
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
    assert choices == ["", "conflict", "totals_mismatch", "unknown_product"]


def test_exports(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = csv_rows(client.get(URL, {"format": "csv", "error_code": "unknown_product"}))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert "ñandú" in row["Contenido recibido"]
    assert row["Estado"] == "Pendiente"
    assert "Producto «SKU-NO-EXISTE» desconocido" in row["Errores"]
    sheet = xlsx_rows(client.get(URL, {"format": "xlsx"}).content)
    assert len(sheet) == 1 + 3 + 1
    assert sheet[-1][0] == "Total (3 filas)"


def test_reprocess_accepted_marks_it_reprocessed_with_who_and_the_sale(fake_ingest, scenario, finance_user):
    # Given the product now exists and the ingest accepts the sale
    row = scenario.quarantined["unknown_product"]
    stored = sale_record(
        terminal=row.terminal,
        occurred_at=scenario.now,
        lines=[(scenario.products["SKU-FRUTA"], 1)],
    )
    fake_ingest.answer = lambda terminal, sales: {
        "results": [{"id": str(stored.pk), "status": "accepted", "flags": []}]
    }

    # When finance reprocesses it
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)

    # Then the ingest got the raw payload as its terminal, in a batch of its own
    (call,) = fake_ingest.calls
    assert call["terminal"] == row.terminal
    assert call["sales"] == [row.raw_payload]
    assert uuid.UUID(call["batch_id"])
    assert call["received_at"] is not None
    # and the row is reprocessed, pointing at the sale, with who and when
    assert result.status == QuarantineStatus.REPROCESSED
    assert result.resulting_sale == stored
    assert result.processed_by == finance_user
    assert result.processed_at is not None


def test_reprocess_duplicate_counts_as_done(fake_ingest, scenario, finance_user):
    row = scenario.quarantined["totals"]
    fake_ingest.answer = lambda terminal, sales: types.SimpleNamespace(
        results=[types.SimpleNamespace(id=sales[0]["id"], status="duplicate", errors=[])]
    )
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)
    assert result.status == QuarantineStatus.REPROCESSED
    assert result.processed_by == finance_user


def test_reprocess_rejected_again_stays_pending_with_the_new_errors(fake_ingest, scenario, finance_user):
    row = scenario.quarantined["unknown_product"]

    def reject(terminal, sales):
        # The real ingest quarantines what it rejects: a second row for the same sale.
        QuarantinedSale.objects.create(
            sale_id=sales[0]["id"], terminal=terminal, raw_payload=sales[0], errors=[], received_at=scenario.now
        )
        error = {"code": "unknown_customer", "field": "customer", "message": "Cliente desconocido"}
        return {"results": [{"id": sales[0]["id"], "status": "rejected", "errors": [error]}]}

    fake_ingest.answer = reject
    result = quarantined_sale_reprocess(quarantined=row, user=finance_user)
    assert result.status == QuarantineStatus.PENDING
    assert result.error_codes == "unknown_customer"
    assert result.errors == [{"code": "unknown_customer", "field": "customer", "message": "Cliente desconocido"}]
    assert finance_user.username in result.note
    assert "rechazada de nuevo" in result.note
    # The copy the ingest made is folded into this row, not left as a second pending one.
    assert QuarantinedSale.objects.filter(sale_id=row.sale_id, status=QuarantineStatus.PENDING).count() == 1


def test_reprocess_or_discard_a_processed_row_is_refused(fake_ingest, scenario, finance_user):
    row = scenario.quarantined["discarded"]
    with pytest.raises(QuarantineError):
        quarantined_sale_reprocess(quarantined=row, user=finance_user)
    with pytest.raises(QuarantineError):
        quarantined_sale_discard(quarantined=row, user=finance_user, note="otra vez")
    assert fake_ingest.calls == []


def test_discard_needs_a_note_and_keeps_the_row(scenario, finance_user):
    row = scenario.quarantined["totals"]
    with pytest.raises(QuarantineError, match="por qué"):
        quarantined_sale_discard(quarantined=row, user=finance_user, note=" ")
    result = quarantined_sale_discard(quarantined=row, user=finance_user, note="Venta de prueba del técnico")
    assert result.status == QuarantineStatus.DISCARDED
    assert result.processed_by == finance_user
    assert "Venta de prueba" in result.note
    assert result.raw_payload == row.raw_payload


def test_reprocess_and_discard_from_the_page(client, fake_ingest, finance_user, scenario):
    client.force_login(finance_user)
    row = scenario.quarantined["totals"]
    fake_ingest.answer = lambda terminal, sales: {"results": [{"id": sales[0]["id"], "status": "duplicate"}]}
    response = client.post(f"{URL}{row.pk}/reprocesar/", {"next": URL + "?status=pending"})
    assert response.status_code == 302
    assert response["Location"] == URL + "?status=pending"
    row.refresh_from_db()
    assert row.status == QuarantineStatus.REPROCESSED
    assert row.processed_by == finance_user
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
