"""«Sobregiros»: customers below zero, how far, the sales behind it, exposure per node."""

from decimal import Decimal

from tests.reports.exports import csv_rows, xlsx_rows

URL = "/admin/reportes/sobregiros/"


def test_customers_below_zero_with_amounts_and_flagged_sales(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL)
    rows = {c.code: c for c in response.context["page_obj"]}
    # Tomás (-4.500, cupo 5.000) bought 6.000 offline: the balance ledger says -10.500.
    tomas = rows["C-000200"]
    assert tomas.balance == Decimal("-10500")
    assert tomas.below_zero == Decimal("10500")
    assert tomas.over_limit == Decimal("5500")
    assert [s.pk for s in tomas.flagged_sales] == [scenario.sales["overdraft"].pk]
    # Samuel (5.000, cupo 10.000) paid 9.000 offline at N2, which does not use the last
    # balance: -4.000, within his overdraft, flagged «saldo no verificado».
    samuel = rows["C-000005"]
    assert samuel.balance == Decimal("-4000")
    assert samuel.over_limit == 0
    assert [s.pk for s in samuel.flagged_sales] == [scenario.sales["unverified"].pk]
    # The employee went to -3.000 within her 5.000 overdraft at N3 (last balance on): no flag.
    employee = rows["E-000001"]
    assert employee.balance == Decimal("-3000")
    assert employee.flagged_sales == []
    assert "C-000123" not in rows  # Ana is still above zero
    page = response.content.decode()
    assert "-$ 10.500" in page
    assert "Sobregiro excedido" in page
    assert "Saldo no verificado" in page
    assert f"/admin/sales/sale/{scenario.sales['overdraft'].pk}/change/" in page
    assert "Exposición del nodo" in page  # the definition is on the page


def test_exposure_per_node_and_total(client, finance_user, scenario):
    client.force_login(finance_user)
    exposure = client.get(URL).context["exposure"]
    by_node = {row["label"]: row for row in exposure["rows"]}
    assert set(by_node) == {"N1 — Cafetería Central", "N2 — Tienda Bloque B"}
    assert by_node["N1 — Cafetería Central"]["exposure"] == Decimal("10500")
    assert by_node["N1 — Cafetería Central"]["over_limit"] == Decimal("5500")
    assert by_node["N2 — Tienda Bloque B"]["exposure"] == Decimal("4000")
    assert by_node["N2 — Tienda Bloque B"]["over_limit"] == 0
    assert exposure["unflagged"]["customers"] == 1  # the employee
    assert exposure["unflagged"]["exposure"] == Decimal("3000")
    assert exposure["total"]["customers"] == 3
    assert exposure["total"]["exposure"] == Decimal("17500")


def test_filters(client, finance_user, scenario):
    client.force_login(finance_user)

    def codes(**params):
        return sorted(c.code for c in client.get(URL, params).context["page_obj"])

    assert codes(status="beyond") == ["C-000200"]
    assert codes(status="within") == ["C-000005", "E-000001"]
    assert codes(node=scenario.terminals["N2-CAJA-01"].node.pk) == ["C-000005"]
    assert codes(node=scenario.terminals["N3-CAJA-01"].node.pk) == []  # below zero there, but no flagged sale
    assert codes(terminal=scenario.terminals["N1-CAJA-01"].pk) == ["C-000200"]
    assert codes(q="tomás") == ["C-000200"]
    assert codes(date_from="2001-01-01", date_to="2001-01-02") == []


def test_exports_with_totals(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = csv_rows(client.get(URL, {"format": "csv", "o": "balance"}))
    header, data, totals = rows[0], rows[1:-1], rows[-1]
    first = dict(zip(header, data[0], strict=True))
    assert first["Cliente"] == "C-000200"
    assert first["Nombre"] == "Tomás Restrepo Vélez"
    assert Decimal(first["Exceso sobre el cupo"]) == Decimal("5500")
    assert str(scenario.sales["overdraft"].pk) in first["Ventas sin conexión marcadas"]
    assert Decimal(totals[header.index("Exceso sobre el cupo")]) == Decimal("5500")
    sheet = xlsx_rows(client.get(URL, {"format": "xlsx", "o": "balance"}).content)
    assert sheet[1][header.index("Saldo")] == -10500
    assert sheet[-1][0] == "Total (3 filas)"
