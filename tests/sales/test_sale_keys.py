"""A sale's terminal, node and institution are enforced by the database as two composite
keys (sales migration 0005; statement keys of the same names since 0009): (terminal,
node) must be a terminal of that node and (node, institution) a node of that
institution. Terminals and nodes that have sales cannot move (their clean() says so
before the database refuses)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from nodes.models import Institution, Node, Terminal
from sales.models import Sale
from tests.sales.stored_sales import SaleSpec, stored_sale_create


def _checked_now(update) -> None:
    """Run ``update`` and any deferred foreign-key check at once (inside the test's
    transaction it would otherwise wait for a commit that never comes; the statement keys
    check at the statement already)."""
    with transaction.atomic():
        update()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def sale(demo, at):
    return stored_sale_create(SaleSpec(terminal="N1-CAJA-01", occurred_at=at(10), lines=(("SKU-AGUA", 1),)))


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_single_column_keys_are_replaced_by_the_composite_ones(demo):
    # Since sales migration 0009 the two composite keys are statement keys of the same
    # names (paygo.statement_keys): triggers, not pg_constraint rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a"
            " ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
            " WHERE c.conrelid = 'sales_sale'::regclass AND c.contype = 'f'"
        )
        keyed = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'sales_sale'::regclass AND NOT tgisinternal")
        triggers = {row[0] for row in cursor.fetchall()}
    assert not keyed & {"terminal_id", "node_id", "institution_id"}
    assert {"sale_terminal_node_fk_inserted", "sale_node_institution_fk_inserted"} <= triggers


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_refuses_a_terminal_of_another_node(sale):
    other_node = Node.objects.get(code="N2")  # same institution, not the terminal's node
    with pytest.raises(IntegrityError, match="sale_terminal_node_fk"):
        _checked_now(lambda: Sale.objects.filter(pk=sale.pk).update(node=other_node))


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_refuses_a_node_of_another_institution(sale):
    other = Institution.objects.get(code="EMP-ANDINA")
    with pytest.raises(IntegrityError, match="sale_node_institution_fk"):
        _checked_now(lambda: Sale.objects.filter(pk=sale.pk).update(institution=other))


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_still_refuses_unknown_terminal_node_and_institution(sale):
    missing = Terminal.objects.order_by("-pk").first().pk + 1000
    for field in ("terminal_id", "node_id", "institution_id"):
        with pytest.raises(IntegrityError):
            _checked_now(lambda field=field: Sale.objects.filter(pk=sale.pk).update(**{field: missing}))


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_refuses_moving_a_terminal_or_node_that_has_sales(sale):
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    with pytest.raises(IntegrityError, match="sale_terminal_node_fk"):
        _checked_now(lambda: Terminal.objects.filter(pk=terminal.pk).update(node=Node.objects.get(code="N2")))
    other = Institution.objects.get(code="EMP-ANDINA")
    with pytest.raises(IntegrityError, match="sale_node_institution_fk"):
        _checked_now(lambda: Node.objects.filter(code="N1").update(institution=other))


@pytest.mark.django_db
def test_a_terminal_with_sales_cannot_move_to_another_node(sale):
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    terminal.node = Node.objects.get(code="N2")
    with pytest.raises(ValidationError) as raised:
        terminal.full_clean()
    assert "node" in raised.value.message_dict
    # Without sales it may move.
    kiosk = Terminal.objects.get(code="N1-KIOSCO-01")
    kiosk.node = Node.objects.get(code="N2")
    kiosk.full_clean()
    kiosk.save()


@pytest.mark.django_db
def test_a_node_with_sales_cannot_move_to_another_institution(sale):
    other = Institution.objects.get(code="EMP-ANDINA")
    node = Node.objects.get(code="N1")
    node.institution = other
    with pytest.raises(ValidationError) as raised:
        node.full_clean()
    assert "institution" in raised.value.message_dict
    # A node without sales may.
    empty = Node.objects.get(code="N2")
    empty.institution = other
    empty.full_clean()
