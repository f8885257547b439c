"""A staff user configures a node for offline selling from the browser."""

import pytest

from nodes.models import Node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_enables_closed_inventory_offline_on_a_node(demo, page, login, live_server, screenshot):
    # Given a node with both offline flags off, and a Datos Base user
    node = Node.objects.get(code="N2")
    assert not node.allow_offline_closed_inventory_sales
    login(demo["data_staff"]["username"], demo["data_staff"]["password"])
    screenshot("admin-index")

    # When they go Datos Base → Nodos y APs, open the node and tick the flag
    page.get_by_role("link", name="Nodos y APs").first.click()
    page.wait_for_url("**/admin/nodes/node/")
    screenshot("nodos-y-aps")
    page.get_by_role("link", name="N2").first.click()
    checkbox = page.get_by_label("Permitir ventas de inventario cerrado")
    assert not checkbox.is_checked()
    checkbox.check()
    screenshot("nodo-flags")
    page.click("input[name=_save]")

    # Then the change is saved and audited
    page.wait_for_url("**/admin/nodes/node/")
    assert page.locator(".messagelist .success").count() == 1
    node.refresh_from_db()
    assert node.allow_offline_closed_inventory_sales is True
    assert node.history.latest().history_user.username == demo["data_staff"]["username"]
    page.goto(f"{live_server.url}/admin/nodes/node/{node.pk}/history/")
    assert "Permitir ventas de inventario cerrado" in page.content() or "allow_offline" in page.content()
    screenshot("nodo-historial")
