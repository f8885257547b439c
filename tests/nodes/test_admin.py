"""The Datos Base admin: pages load for each role, finance reads but cannot change,
node flags are saved and audited."""

import pytest
from django.urls import reverse

from nodes.models import Node, Terminal

PAGES = [
    "admin:index",
    "admin:nodes_node_changelist",
    "admin:nodes_terminal_changelist",
    "admin:inventory_product_changelist",
    "admin:billing_customer_changelist",
    "admin:billing_invoiceresolution_changelist",
    "admin:sales_sale_changelist",
    "admin:inventory_stockmovement_changelist",
    "admin:billing_balancemovement_changelist",
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin_user", "finance_user", "data_staff_user"])
def test_admin_pages_load_for_each_role(client, role, request):
    client.force_login(request.getfixturevalue(role))
    for name in PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
    node = Node.objects.get(code="N1")
    response = client.get(reverse("admin:nodes_node_change", args=[node.pk]))
    assert response.status_code == 200
    assert "Permitir ventas de inventario cerrado" in response.text
    assert "Usar el último balance para ventas payGO" in response.text


@pytest.mark.django_db
def test_index_is_spanish_and_grouped_in_datos_base(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:index"))
    assert "payGO — Back office" in response.text
    assert "Datos Base" in response.text
    assert "Nodos y APs" in response.text


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login(client, demo):
    response = client.get(reverse("admin:nodes_node_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def _node_form(node, **changes):
    data = {
        "institution": node.institution_id,
        "code": node.code,
        "name": node.name,
        "active": "on" if node.active else "",
        "allow_offline_closed_inventory_sales": "on" if node.allow_offline_closed_inventory_sales else "",
        "use_last_balance_offline": "on" if node.use_last_balance_offline else "",
        "balance_sync_interval_seconds": node.balance_sync_interval_seconds,
        "invoice_numbering_level": node.invoice_numbering_level,
        "terminals-TOTAL_FORMS": 0,
        "terminals-INITIAL_FORMS": 0,
        "terminals-MIN_NUM_FORMS": 0,
        "terminals-MAX_NUM_FORMS": 1000,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


@pytest.mark.django_db
def test_finance_cannot_change_a_node(client, finance_user):
    node = Node.objects.get(code="N2")
    client.force_login(finance_user)
    response = client.post(
        reverse("admin:nodes_node_change", args=[node.pk]),
        _node_form(node, allow_offline_closed_inventory_sales="on"),
    )
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.allow_offline_closed_inventory_sales is False


@pytest.mark.django_db
def test_node_form_saves_both_flags_and_the_change_is_audited(client, data_staff_user):
    node = Node.objects.get(code="N2")
    client.force_login(data_staff_user)
    url = reverse("admin:nodes_node_change", args=[node.pk])
    form = _node_form(node, allow_offline_closed_inventory_sales="on", use_last_balance_offline="on")
    form["terminals-INITIAL_FORMS"] = 0
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]

    node.refresh_from_db()
    assert node.allow_offline_closed_inventory_sales is True
    assert node.use_last_balance_offline is True
    latest = node.history.latest()
    assert latest.history_user == data_staff_user
    delta = latest.diff_against(latest.prev_record)
    assert {c.field for c in delta.changes} == {"allow_offline_closed_inventory_sales", "use_last_balance_offline"}
    history_page = client.get(reverse("admin:nodes_node_history", args=[node.pk]))
    assert history_page.status_code == 200
    assert data_staff_user.username in history_page.text


@pytest.mark.django_db
def test_key_rotation_shows_the_key_once_and_only_with_permission(client, data_staff_user, finance_user):
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    url = reverse("admin:nodes_terminal_rotate_key", args=[terminal.pk])
    client.force_login(finance_user)
    assert client.post(url).status_code == 403

    client.force_login(data_staff_user)
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    terminal.refresh_from_db()
    assert terminal.key_prefix in response.text
    assert terminal.key_hash not in response.text
