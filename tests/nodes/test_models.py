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
