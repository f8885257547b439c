import pytest
from django.db import IntegrityError, transaction

from nodes.models import Institution, Node, Terminal


@pytest.mark.django_db
def test_node_and_terminal_codes_are_unique(demo):
    institution = Institution.objects.get(code="COL-SANJOSE")
    with pytest.raises(IntegrityError), transaction.atomic():
        Node.objects.create(institution=institution, code="N1", name="Otra")
    node = Node.objects.get(code="N1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Terminal.objects.create(node=node, code="N1-CAJA-01", name="Copia")


@pytest.mark.django_db
def test_sync_interval_has_a_floor_in_the_database(demo):
    with pytest.raises(IntegrityError), transaction.atomic():
        Node.objects.filter(code="N1").update(balance_sync_interval_seconds=5)


@pytest.mark.django_db
def test_an_ap_or_node_that_has_sold_cannot_move_but_can_still_be_edited(demo):
    from django.core.exceptions import ValidationError
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from tests.sales.stored_sales import SaleSpec, stored_sale_create

    stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=timezone.now(), lines=(("SKU-JUGO", "1"),)))

    # Renamed, the AP and its node stay valid, without reading their sales
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    node = terminal.node
    terminal.name, node.name = "Caja principal", "Cafetería"
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        terminal.clean()
        node.clean()
    assert not [query["sql"] for query in captured.captured_queries if "sales_sale" in query["sql"]]

    # Moved, they are refused
    terminal.node = Node.objects.get(code="N2")
    with pytest.raises(ValidationError) as refused:
        terminal.clean()
    assert refused.value.message_dict == {
        "node": ["Esta AP ya tiene ventas registradas en otro nodo; no puede cambiarse."]
    }
    node.institution = Institution.objects.get(code="EMP-ANDINA")
    with pytest.raises(ValidationError) as refused:
        node.clean()
    assert refused.value.message_dict == {
        "institution": ["Este nodo ya tiene ventas registradas en otra institución; no puede cambiarse."]
    }

    # An AP that has not sold may move
    idle = Terminal.objects.get(code="N1-CAJA-02")
    idle.node = Node.objects.get(code="N2")
    idle.clean()
