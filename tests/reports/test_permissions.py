"""Who sees and does what: anonymous, «Datos Base», «Finanzas», staff without the perms.

Decision: reports (and the dashboard) need ``sales.view_reports``, held by «Finanzas»
and superusers only; «Datos Base» configures and does not read finance reports.
"""

import pytest
from django.contrib.auth.models import Permission

from inventory.models import NegativeStockStatus
from nodes.roles import DATA_STAFF_GROUP, FINANCE_GROUP, role_permissions
from paygo.reporting import business_today
from sales.models import QuarantineStatus

REPORTS = ["inventario-negativo", "excepciones-offline", "estado-sincronizacion", "sobregiros", "cuarentena"]


@pytest.fixture
def plain_staff(demo, django_user_model):
    """Staff with read access to sales and stock, but none of the report permissions."""
    user = django_user_model.objects.create_user("soporte", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_sale", "view_negativestockevent", "view_quarantinedsale"])
    )
    return user


@pytest.mark.parametrize("slug", REPORTS)
@pytest.mark.parametrize("export", ["", "?format=csv", "?format=xlsx"])
def test_anonymous_is_sent_to_login_and_gets_no_data(client, db, slug, export):
    response = client.get(f"/admin/reportes/{slug}/{export}")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert b"SKU" not in response.content
    assert "Content-Disposition" not in response


def test_anonymous_cannot_post_actions(client, scenario):
    event = scenario.events["n1_sandwich"]
    quarantined = scenario.quarantined["totals"]
    for url in (
        f"/admin/reportes/inventario-negativo/{event.pk}/resolver/",
        f"/admin/reportes/cuarentena/{quarantined.pk}/reprocesar/",
        f"/admin/reportes/cuarentena/{quarantined.pk}/descartar/",
    ):
        response = client.post(url, {"method": "count", "quantity": "0", "note": "x"})
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    event.refresh_from_db()
    assert event.status == NegativeStockStatus.OPEN


@pytest.mark.parametrize("slug", REPORTS)
def test_finance_reads_and_exports_every_report(client, finance_user, scenario, slug):
    client.force_login(finance_user)
    assert client.get(f"/admin/reportes/{slug}/").status_code == 200
    assert client.get(f"/admin/reportes/{slug}/?format=csv").status_code == 200
    assert client.get(f"/admin/reportes/{slug}/?format=xlsx").status_code == 200


@pytest.mark.parametrize("slug", ["", *REPORTS])
def test_data_staff_do_not_see_reports(client, data_staff_user, scenario, slug):
    client.force_login(data_staff_user)
    assert client.get(f"/admin/reportes/{slug}/" if slug else "/admin/reportes/").status_code == 403
    assert client.get(f"/admin/reportes/{slug}/?format=csv" if slug else "/admin/reportes/").status_code == 403


def test_staff_without_the_permissions_get_403_on_actions(client, plain_staff, scenario):
    client.force_login(plain_staff)
    event = scenario.events["n1_sandwich"]
    quarantined = scenario.quarantined["totals"]
    assert client.get("/admin/reportes/inventario-negativo/").status_code == 403
    assert (
        client.post(
            f"/admin/reportes/inventario-negativo/{event.pk}/resolver/",
            {"method": "count", "quantity": "0", "note": "x"},
        ).status_code
        == 403
    )
    assert client.post(f"/admin/reportes/cuarentena/{quarantined.pk}/reprocesar/").status_code == 403
    assert client.post(f"/admin/reportes/cuarentena/{quarantined.pk}/descartar/", {"note": "x"}).status_code == 403
    event.refresh_from_db()
    quarantined.refresh_from_db()
    assert event.status == NegativeStockStatus.OPEN
    assert quarantined.status == QuarantineStatus.PENDING


def test_reader_without_resolve_or_reprocess_permission_gets_403_on_post(client, plain_staff, scenario):
    plain_staff.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(plain_staff)
    event = scenario.events["n1_sandwich"]
    page = client.get("/admin/reportes/inventario-negativo/").content.decode()
    assert "/resolver/" not in page  # no button for what they cannot do
    assert "Reprocesar" not in client.get("/admin/reportes/cuarentena/").content.decode()
    response = client.post(
        f"/admin/reportes/inventario-negativo/{event.pk}/resolver/", {"method": "count", "quantity": "0", "note": "x"}
    )
    assert response.status_code == 403
    quarantined = scenario.quarantined["totals"]
    assert client.post(f"/admin/reportes/cuarentena/{quarantined.pk}/reprocesar/").status_code == 403


def test_finance_role_holds_report_perms_and_cannot_change_base_data(finance_user, data_staff_user):
    assert finance_user.has_perm("sales.view_reports")
    assert finance_user.has_perm("inventory.resolve_negativestockevent")
    assert finance_user.has_perm("sales.reprocess_quarantinedsale")
    for perm in ("nodes.change_node", "nodes.add_terminal", "inventory.change_product", "billing.change_customer"):
        assert not finance_user.has_perm(perm)
    assert not data_staff_user.has_perm("sales.view_reports")
    assert ("sales", "view_reports") not in role_permissions()[DATA_STAFF_GROUP]
    assert ("sales", "view_reports") in role_permissions()[FINANCE_GROUP]


def test_finance_cannot_edit_a_node_in_the_admin(client, finance_user, scenario):
    client.force_login(finance_user)
    node = scenario.terminals["N1-CAJA-01"].node
    response = client.post(f"/admin/nodes/node/{node.pk}/change/", {"name": "hackeado"})
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.name != "hackeado"


def test_dashboard_and_reports_section_on_the_index(client, finance_user, django_assert_max_num_queries, scenario):
    client.force_login(finance_user)
    with django_assert_max_num_queries(20):
        response = client.get("/admin/")
    page = response.content.decode()
    cards = {card["label"]: card for card in response.context["dashboard_cards"]}
    today = business_today()
    today_offline = [sale for sale in scenario.sales.values() if sale.offline and sale.business_date == today]
    assert cards["Inventario negativo abierto"]["figure"] == 2
    assert cards["APs silenciosas"]["figure"] == 4
    assert cards["Ventas en cuarentena"]["figure"] == 2
    assert cards["Ventas sin conexión hoy"]["figure"] == len(today_offline)
    # The offline card counts every offline sale of the day, flagged or not, and links
    # to exactly those: the Sales admin filtered by offline and today.
    offline_url = cards["Ventas sin conexión hoy"]["url"]
    assert offline_url.startswith("/admin/sales/sale/?")
    listed = client.get(offline_url)
    assert listed.status_code == 200
    assert {sale.pk for sale in listed.context["cl"].result_list} == {sale.pk for sale in today_offline}
    assert "/admin/reportes/inventario-negativo/?status=open" in page
    assert "/admin/reportes/cuarentena/?status=pending" in page
    assert 'href="/admin/reportes/"' in page
    assert "Sobregiros" in page


def test_data_staff_index_has_no_dashboard_nor_reports(client, data_staff_user, scenario):
    client.force_login(data_staff_user)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "dashboard_cards" not in response.context
    assert "/admin/reportes/" not in response.content.decode()
