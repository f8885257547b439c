"""«Inventario negativo»: contents, filters, sorting, exports and finance resolving it."""

from datetime import datetime
from decimal import Decimal

import pytest

from inventory.models import NegativeStockStatus, NodeStock, StockMovement, StockMovementKind
from inventory.negative_stock import NegativeStockResolveError, negative_stock_event_resolve
from paygo.reporting import local_datetime
from tests.reports.exports import csv_rows, xlsx_rows, xlsx_sheet

URL = "/admin/reportes/inventario-negativo/"


def test_lists_each_event_with_stock_value_and_the_sales_that_caused_it(client, finance_user, scenario):
    # Given the N1 sandwich event (two offline sales on two APs took 1 → -2 → -3)
    client.force_login(finance_user)

    # When finance opens the report
    response = client.get(URL)

    # Then both events are there, with current stock, lowest, value at price and the sales
    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["row_count"] == 2
    assert "Sándwich de pollo" in page
    assert "Sándwich cubano" in page
    assert "$ 19.500" in page  # |-3| × 6.500
    assert "$ 29.000" in page  # totals row: 19.500 + 9.500
    for key in ("n1_below", "n1_lowest", "n3_below"):
        assert f"/admin/sales/sale/{scenario.sales[key].pk}/change/" in page
    assert f"/admin/sales/sale/{scenario.sales['n1_first'].pk}/change/" not in page  # stock stayed ≥ 0
    assert "N1-CAJA-02 #" in page
    assert "sin conexión" in page
    assert "<svg" in page
    assert "Valor del inventario negativo por nodo" in page


def test_filters_by_node_terminal_status_and_search(client, finance_user, scenario):
    client.force_login(finance_user)
    n1 = scenario.terminals["N1-CAJA-01"].node

    def skus(**params):
        rows = client.get(URL, params).context["table"]
        return sorted(row["cells"][1][1] for row in rows)

    assert skus(node=n1.pk) == ["SKU-SANDWICH"]
    assert skus(terminal=scenario.terminals["N3-CAJA-01"].pk) == ["AND-SANDWICH"]
    assert skus(terminal=scenario.terminals["N2-CAJA-01"].pk) == []
    assert skus(q="cubano") == ["AND-SANDWICH"]
    assert skus(status="resolved") == []
    assert skus(status="open") == ["AND-SANDWICH", "SKU-SANDWICH"]
    day = local_datetime(scenario.events["n1_sandwich"].started_at).date().isoformat()
    assert len(skus(date_from="2000-01-01", date_to="2000-01-02")) == 0
    assert len(skus(date_from=day, date_to=day)) >= 1
    # An invalid filter is shown with its error and ignored, not a 500.
    response = client.get(URL, {"node": "999999"})
    assert response.status_code == 200
    assert response.context["form"].errors


def test_sorts_by_value_both_ways(client, finance_user, scenario):
    client.force_login(finance_user)
    ascending = client.get(URL, {"o": "value_at_price"}).context["table"]
    descending = client.get(URL, {"o": "-value_at_price"}).context["table"]
    assert [r["cells"][1][1] for r in ascending] == ["AND-SANDWICH", "SKU-SANDWICH"]
    assert [r["cells"][1][1] for r in descending] == ["SKU-SANDWICH", "AND-SANDWICH"]
    # An unknown column falls back to the default order instead of failing.
    assert client.get(URL, {"o": "password"}).status_code == 200


def test_csv_export_has_bom_accents_all_rows_and_totals(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = csv_rows(client.get(URL, {"format": "csv", "node": scenario.terminals["N1-CAJA-01"].node.pk}))
    header, data, totals = rows[0], rows[1:-1], rows[-1]
    assert header[:3] == ["Nodo", "SKU", "Producto"]
    assert "Mínimo alcanzado" in header
    assert "Valor a precio" in header
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert row["Producto"] == "Sándwich de pollo"
    assert Decimal(row["Existencias actuales"]) == Decimal("-3")
    assert Decimal(row["Valor a precio"]) == Decimal("19500")
    assert row["Estado"] == "Abierto"
    assert str(scenario.sales["n1_below"].pk) in row["Ventas que lo causaron"]
    assert totals[0] == "Total (1 filas)"
    assert Decimal(totals[header.index("Valor a precio")]) == Decimal("19500")
    assert "Acciones" not in header


def test_xlsx_export_has_typed_cells_header_rows_and_totals(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL, {"format": "xlsx", "o": "-value_at_price"})
    assert response["Content-Disposition"].startswith('attachment; filename="inventario-negativo-')
    rows = xlsx_rows(response.content)
    header, data, totals = rows[0], rows[1:-1], rows[-1]
    assert len(data) == 2
    first = dict(zip(header, data[0], strict=True))
    assert first["Producto"] == "Sándwich de pollo"
    assert isinstance(first["Valor a precio"], int | float)
    assert first["Valor a precio"] == 19500
    assert isinstance(first["Existencias actuales"], int | float)
    assert first["Existencias actuales"] == -3
    assert isinstance(first["Negativo desde"], datetime)
    assert first["Negativo desde"].tzinfo is None  # Excel has no zones: Bogotá wall time
    started = scenario.events["n1_sandwich"].started_at
    assert first["Negativo desde"] == local_datetime(started).replace(tzinfo=None, microsecond=0)
    assert totals[0] == "Total (2 filas)"
    assert totals[header.index("Valor a precio")] == 29000
    sheet = xlsx_sheet(response.content)
    assert sheet.cell(row=1, column=1).font.b
    assert sheet.cell(row=2, column=header.index("Valor a precio") + 1).number_format == "#,##0.00"


# --- The resolve service -------------------------------------------------------------------------


def test_resolve_with_a_count_appends_a_movement_and_audits_the_event(scenario, finance_user):
    # Given the N1 sandwich event, stock at -3
    event = scenario.events["n1_sandwich"]
    movements_before = StockMovement.objects.filter(node=event.node, product=event.product).count()

    # When finance counts 2 sandwiches on the shelf
    resolved = negative_stock_event_resolve(
        event=event, user=finance_user, counted=Decimal("2"), note="Conteo del cierre: 2 en vitrina"
    )

    # Then one count movement of +5 was appended, stock is 2, the event is resolved by them
    assert StockMovement.objects.filter(node=event.node, product=event.product).count() == movements_before + 1
    movement = resolved.resolution_movement
    assert movement.kind == StockMovementKind.COUNT
    assert movement.quantity == Decimal("5")
    assert movement.created_by == finance_user
    assert "Conteo del cierre" in movement.note
    assert NodeStock.objects.get(node=event.node, product=event.product).quantity == Decimal("2")
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.RESOLVED
    assert event.resolved_by == finance_user
    assert event.resolved_at is not None
    assert event.resolution_note == "Conteo del cierre: 2 en vitrina"
    # Reconciliation writes events set-based (no history row); the resolution is audited.
    history = event.history.latest()
    assert history.status == NegativeStockStatus.RESOLVED
    assert history.history_user == finance_user
    assert history.resolution_note == "Conteo del cierre: 2 en vitrina"


def test_resolve_with_an_adjustment(scenario, finance_user):
    event = scenario.events["n3_sandwich"]
    negative_stock_event_resolve(event=event, user=finance_user, adjustment=Decimal("1"), note="Ajuste: faltante")
    event.refresh_from_db()
    assert event.resolution_movement.kind == StockMovementKind.ADJUSTMENT
    assert NodeStock.objects.get(node=event.node, product=event.product).quantity == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counted": Decimal("0"), "note": "  "}, "nota"),
        ({"note": "sin cantidad"}, "solo uno"),
        ({"counted": Decimal("0"), "adjustment": Decimal("1"), "note": "dos"}, "solo uno"),
        ({"adjustment": Decimal("0"), "note": "cero"}, "cero"),
        ({"counted": Decimal("-1"), "note": "negativo"}, "negativo"),
    ],
)
def test_resolve_refuses_incomplete_or_invalid_input(scenario, finance_user, kwargs, message):
    event = scenario.events["n1_sandwich"]
    with pytest.raises(Exception, match=message):
        negative_stock_event_resolve(event=event, user=finance_user, **kwargs)
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.OPEN


def test_resolve_twice_is_refused(scenario, finance_user):
    event = scenario.events["n1_sandwich"]
    negative_stock_event_resolve(event=event, user=finance_user, counted=Decimal("0"), note="primera")
    with pytest.raises(NegativeStockResolveError, match="ya fue resuelto"):
        negative_stock_event_resolve(event=event, user=finance_user, counted=Decimal("0"), note="segunda")
    assert StockMovement.objects.filter(kind=StockMovementKind.COUNT, node=event.node).count() == 1


# --- The resolve page ------------------------------------------------------------------------------


def test_finance_resolves_from_the_report(client, finance_user, scenario):
    event = scenario.events["n1_sandwich"]
    client.force_login(finance_user)
    page = client.get(URL).content.decode()
    resolve_url = f"{URL}{event.pk}/resolver/"
    assert resolve_url in page

    form = client.get(resolve_url)
    assert form.status_code == 200
    assert "Conteo físico" in form.content.decode()
    # A missing note keeps the form with its error and changes nothing.
    response = client.post(resolve_url, {"method": "count", "quantity": "0", "note": ""})
    assert response.status_code == 200
    assert response.context["form"].errors
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.OPEN

    response = client.post(
        resolve_url, {"method": "count", "quantity": "0", "note": "Vitrina vacía", "next": URL + "?status=resolved"}
    )
    assert response.status_code == 302
    assert response["Location"] == URL + "?status=resolved"
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.RESOLVED
    assert event.resolved_by == finance_user
    assert event.history.latest().history_user == finance_user
    page = client.get(URL, {"status": "resolved"}).content.decode()
    assert "Resuelto" in page
    assert "Vitrina vacía" in page


def test_resolve_page_ignores_an_offsite_next(client, finance_user, scenario):
    event = scenario.events["n1_sandwich"]
    client.force_login(finance_user)
    response = client.post(
        f"{URL}{event.pk}/resolver/",
        {"method": "adjustment", "quantity": "3", "note": "ok", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == URL
