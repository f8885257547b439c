"""«Estado de sincronización»: per AP what it reported, what is missing, who is silent."""

from datetime import timedelta

from django.test import override_settings

from tests.reports.exports import csv_rows, xlsx_rows

URL = "/admin/reportes/estado-sincronizacion/"


def _rows(client, **params):
    return {row.code: row for row in client.get(URL, params).context["page_obj"]}


def test_shows_backlog_balances_age_gaps_quarantine_and_silence(client, finance_user, scenario):
    client.force_login(finance_user)
    response = client.get(URL)
    rows = {row.code: row for row in response.context["page_obj"]}
    caja1 = rows["N1-CAJA-01"]
    assert caja1.reported_pending_sales == 3
    assert caja1.reported_balances_age_seconds == 280
    assert caja1.gap_count == 2
    assert caja1.missing_seq == 4
    assert caja1.quarantine_pending == 1
    assert not caja1.silent
    assert rows["N1-CAJA-02"].silent  # last seen 2 h ago
    assert rows["N1-KIOSCO-01"].silent  # never seen
    page = response.content.decode()
    assert "5–7, 10" in page
    assert "row-silent" in page
    assert "Silenciosa" in page
    assert "Nunca se ha conectado" in page
    assert response.context["silent_count"] == 4
    totals = response.context["footer"]
    assert ("Ventas pendientes (reportadas)", "12") in [(c.label, t) for c, t in totals]


def test_silence_threshold_comes_from_settings(client, finance_user, scenario):
    client.force_login(finance_user)
    with override_settings(PAYGO_TERMINAL_SILENT_AFTER=timedelta(hours=3)):
        assert not _rows(client)["N1-CAJA-02"].silent
    with override_settings(PAYGO_TERMINAL_SILENT_AFTER=timedelta(seconds=30)):
        assert _rows(client)["N1-CAJA-01"].silent


def test_filters_status_kind_node_and_search(client, finance_user, scenario):
    client.force_login(finance_user)
    assert set(_rows(client, status="silent")) == {"N1-CAJA-02", "N1-KIOSCO-01", "N1-COCINA-01", "N3-COCINA-01"}
    assert "N1-CAJA-02" not in _rows(client, status="online")
    assert set(_rows(client, kind="kitchen")) == {"N1-COCINA-01", "N3-COCINA-01"}
    assert set(_rows(client, node=scenario.terminals["N2-CAJA-01"].node.pk)) == {"N2-CAJA-01"}
    assert set(_rows(client, q="casino 2")) == {"N3-CAJA-02"}
    assert next(iter(_rows(client, o="-missing_seq"))) == "N1-CAJA-01"


def test_exports(client, finance_user, scenario):
    client.force_login(finance_user)
    rows = csv_rows(client.get(URL, {"format": "csv", "q": "N1-CAJA"}))
    header = rows[0]
    data = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:-1]}
    assert data["N1-CAJA-01"]["Seq faltantes (rangos)"] == "5–7, 10"
    assert data["N1-CAJA-02"]["Estado"] == "Silenciosa"
    assert rows[-1][header.index("Ventas pendientes (reportadas)")] == "12"
    sheet = xlsx_rows(client.get(URL, {"format": "xlsx", "q": "N1-CAJA"}).content)
    row = dict(zip(sheet[0], sheet[1], strict=True))
    assert row["Antigüedad de saldos (s)"] == 280
    assert row["Seq faltantes"] == 4
