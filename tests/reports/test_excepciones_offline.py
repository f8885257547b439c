"""«Excepciones offline»: every flagged sale by flag, node, AP, customer and day."""

from decimal import Decimal

from sales.models import FlagCode
from tests.reports.exports import csv_rows, xlsx_rows

URL = "/admin/reportes/excepciones-offline/"


def test_lists_every_flag_with_counts_chart_and_links(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL)
    page = response.content.decode()
    # What reconciliation and the ingest flagged: 3 negative_stock (N1 below and lowest,
    # N3), overdraft_exceeded (Tomás), balance_unverified (N2, payGO offline),
    # blocked_product (Ana), offline_not_allowed (N2, closed inventory), and
    # invoice_deferred on the four offline sales numbered by the server after sync (N2 is
    # numbered per node, N3 per institution; N1's registers number their own). No flag on
    # the N1 cash sales nor the online sale; the employee within her overdraft only has
    # her deferred invoice.
    assert response.context["row_count"] == 11
    assert response.context["distinct_sales"] == 8
    assert "Producto bloqueado" in page
    assert "Ana Pérez" in page
    assert f"/admin/sales/sale/{scenario.sales['blocked'].pk}/change/" in page
    assert "<svg" in page
    assert "Alertas por tipo" in page
    by_code = dict(response.context["counts_by_node"])
    assert by_code["N1 — Cafetería Central"] == 4
    flagged = {row.sale_id for row in response.context["page_obj"]}
    for key in ("online", "n1_first", "n1_cash_2"):
        assert scenario.sales[key].pk not in flagged


def test_filters_by_flag_node_terminal_customer_day_and_offline(client, finance_user, scenario):
    client.force_login(finance_user)

    def count(**params):
        return client.get(URL, params).context["row_count"]

    assert count(flag=FlagCode.NEGATIVE_STOCK) == 3
    assert count(node=scenario.terminals["N2-CAJA-01"].node.pk) == 4
    assert count(terminal=scenario.terminals["N1-CAJA-02"].pk) == 2
    assert count(q="C-000123") == 1
    assert count(q="ana pérez") == 1
    assert count(q=str(scenario.sales["overdraft"].pk)) == 1
    assert count(offline="0") == 0
    assert count(institution=scenario.terminals["N3-CAJA-01"].node.institution.pk) == 3
    assert count(flag=FlagCode.INVOICE_DEFERRED) == 4
    assert count(flag=FlagCode.BALANCE_UNVERIFIED) == 1
    assert count(flag=FlagCode.OFFLINE_NOT_ALLOWED) == 1
    day = scenario.sales["blocked"].business_date
    flag_rows = {"n1_below": 1, "n1_lowest": 1, "n3_below": 2, "overdraft": 1, "unverified": 2, "blocked": 1}
    flag_rows |= {"n2_offline": 2, "within_limit": 1}
    same_day = sum(rows for key, rows in flag_rows.items() if scenario.sales[key].business_date == day)
    assert count(date_from=day.isoformat(), date_to=day.isoformat()) == same_day
    assert count(date_from="2001-01-01", date_to="2001-01-31") == 0


def test_sorting_by_customer(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = client.get(URL, {"o": "-sale__customer__code", "q": "C-0"}).context["page_obj"]
    # C-000005's offline payGO sale at N2 has two flags: balance_unverified and invoice_deferred.
    assert [r.sale.customer.code for r in rows] == ["C-000200", "C-000123", "C-000005", "C-000005"]


def test_exports_match_the_filtered_rows(client, finance_user, scenario):
    client.force_login(finance_user)
    params = {"flag": FlagCode.BLOCKED_PRODUCT}
    rows = csv_rows(client.get(URL, {**params, "format": "csv"}))
    header, data, totals = rows[0], rows[1:-1], rows[-1]
    row = dict(zip(header, data[0], strict=True))
    assert len(data) == 1
    assert totals[0] == "Total (1 filas)"
    assert row["Alerta"] == "Producto bloqueado"
    assert row["Nombre del cliente"] == "Ana Pérez"
    assert row["Sin conexión"] == "Sí"
    assert Decimal(row["Total de la venta"]) == Decimal("2500.00")
    assert row["Venta"] == str(scenario.sales["blocked"].pk)
    # The detail is the rule's message as the ingest wrote it, not the raw JSON.
    assert row["Detalle"] == "El producto SKU-GASEOSA está bloqueado para este cliente."

    sheet = xlsx_rows(client.get(URL, {**params, "format": "xlsx"}).content)
    header, data = sheet[0], sheet[1:-1]
    row = dict(zip(header, data[0], strict=True))
    assert row["Día"].date() == scenario.sales["blocked"].business_date
    assert row["Total de la venta"] == 2500
