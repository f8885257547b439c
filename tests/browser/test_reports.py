"""Finance works the reports from the browser: filter, export, resolve negative stock."""

from decimal import Decimal

import pytest
from openpyxl import load_workbook

from inventory.models import NegativeStockStatus, NodeStock
from nodes.roles import roles_apply
from paygo.reporting import business_today
from tests.reports.report_data import report_scenario

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def roles(transactional_db):
    """The groups the data migration made: a transactional test before this one flushed them."""
    roles_apply()


def test_finance_filters_exports_and_resolves_negative_stock(roles, demo, page, login, live_server, screenshot):
    # Given offline sales that took N1's sandwiches to -3, and a finance user
    scenario = report_scenario()
    event = scenario.events["n1_sandwich"]
    login(demo["finance"]["username"], demo["finance"]["password"])
    assert page.locator(".paygo-card").count() == 5
    screenshot("admin-index-dashboard")

    # When they open Reportes → Inventario negativo and filter by node N1
    page.get_by_role("link", name="Inventario negativo", exact=True).first.click()
    page.wait_for_url("**/admin/reportes/inventario-negativo/")
    assert page.locator("#result_list tbody tr").count() == 2
    screenshot("reporte-inventario-negativo")
    page.select_option("#id_node", label="N1 — Cafetería Central")
    page.get_by_role("button", name="Filtrar").click()
    page.wait_for_url(f"**/admin/reportes/inventario-negativo/?*node={event.node_id}*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Sándwich de pollo" in rows.first.inner_text()

    # and download the Excel of what they see
    with page.expect_download() as download_info:
        page.click("#export-xlsx")
    download = download_info.value
    assert download.suggested_filename.startswith("inventario-negativo-")
    with open(download.path(), "rb") as workbook:  # the temporary file has no .xlsx suffix
        sheet = load_workbook(workbook).active
    values = list(sheet.iter_rows(values_only=True))
    header, data, totals = values[0], values[1:-1], values[-1]
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert row["Producto"] == "Sándwich de pollo"
    assert row["Valor a precio"] == 19500
    assert row["Existencias actuales"] == -3
    assert totals[0] == "Total (1 filas)"

    # and resolve it with a physical count and a note
    rows.first.get_by_role("link", name="Resolver").click()
    page.wait_for_url(f"**/admin/reportes/inventario-negativo/{event.pk}/resolver/**")
    page.check("input[name=method][value=count]")
    page.fill("#id_quantity", "0")
    page.fill("#id_note", "Conteo de cierre: vitrina vacía")
    screenshot("reporte-inventario-negativo-resolver")
    page.get_by_role("button", name="Resolver").click()

    # Then they are back on the filtered report, and the event shows as resolved
    page.wait_for_url(f"**/admin/reportes/inventario-negativo/?*node={event.node_id}*")
    assert page.locator(".messagelist .success").count() == 1
    status_cell = page.locator("#result_list tbody tr").first.locator("td.col-status")
    assert "Resuelto" in status_cell.inner_text()
    assert "vitrina vacía" in status_cell.inner_text()
    screenshot("reporte-inventario-negativo-resuelto")
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.RESOLVED
    assert event.resolved_by.username == demo["finance"]["username"]
    assert event.history.latest().history_user.username == demo["finance"]["username"]
    assert NodeStock.objects.get(node=event.node, product=event.product).quantity == Decimal("0")


def test_every_report_page_renders_for_finance(roles, demo, page, login, live_server, screenshot):
    scenario = report_scenario()
    login(demo["finance"]["username"], demo["finance"]["password"])
    # The offline card opens every offline sale of the day, flagged or not.
    today = business_today()
    offline_today = [s for s in scenario.sales.values() if s.offline and s.business_date == today]
    page.locator(".paygo-card", has_text="Ventas sin conexión hoy").click()
    page.wait_for_url("**/admin/sales/sale/?*offline__exact=1*")
    assert page.locator("#result_list tbody tr").count() == len(offline_today)
    for slug in ("excepciones-offline", "estado-sincronizacion", "sobregiros", "cuarentena"):
        page.goto(f"{live_server.url}/admin/reportes/{slug}/")
        assert page.locator("#result_list").count() == 1
        assert page.locator("#result_list tbody tr").count() >= 1
        screenshot(f"reporte-{slug}")
    page.goto(f"{live_server.url}/admin/reportes/estado-sincronizacion/?status=silent")
    assert page.locator("#result_list tbody tr.row-silent").count() == 4
    page.goto(f"{live_server.url}/admin/reportes/cuarentena/")
    page.locator("details.report-payload summary").first.click()
    screenshot("reporte-cuarentena-contenido")
