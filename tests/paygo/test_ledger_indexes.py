"""The tables reconciliation writes for every sale carry only the indexes a read needs.

Each index of these tables is written again by every reconciled sale line (stock
movements), paygo or units payment (balance and unit movements), balance change (customer
rows: never a HOT update, ``change_seq`` is indexed) and comanda, and by every new row of
node stock and unit balances. An index that a
composite one leading with the same column already covers is pure write cost, and so was
a full index of ``created_by``, which held one NULL entry per sale movement: it is partial,
indexing only the movements staff wrote, which is what deleting a user looks up.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import ProtectedError

from billing.models import BalanceMovement, Customer, UnitBalance, UnitMovement
from billing.services import customer_balance_credit, customer_units_add
from inventory.models import NodeStock, Product, StockMovement
from inventory.services import stock_movement_record
from nodes.models import Node
from sales.models import Comanda

# Non-unique indexes by table: (name, columns). Unique and primary keys (which are also
# constraints the data needs) are not listed.
EXPECTED = {
    StockMovement: {
        ("stockmove_node_prod_time", ("node_id", "product_id", "occurred_at")),
        ("stockmove_created_by", ("created_by_id",)),
        # Movements of one product across nodes (the admin's filter, deleting a product).
        ("inventory_stockmovement_product_id_4eccfd0a", ("product_id",)),
    },
    BalanceMovement: {
        ("balmove_customer_time", ("customer_id", "occurred_at")),
        ("balmove_created_by", ("created_by_id",)),
    },
    UnitMovement: {
        ("unitmove_customer_time", ("customer_id", "unit_type", "occurred_at")),
        ("unitmove_created_by", ("created_by_id",)),
    },
    Customer: {("customer_feed_idx", ("institution_id", "change_seq", "id"))},
    # Their unique (node, product) and (customer, unit_type) lead with node and customer.
    NodeStock: {("inventory_nodestock_product_id_5ef87c22", ("product_id",))},
    UnitBalance: set(),
    Comanda: {("comanda_node_status", ("node_id", "status", "occurred_at"))},
}


def _plain_indexes(model) -> set[tuple[str, tuple[str, ...]]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        (name, tuple(info["columns"]))
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
    }


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(EXPECTED), ids=lambda model: model.__name__)
def test_a_table_reconcile_writes_has_no_index_another_one_covers(model):
    assert _plain_indexes(model) == EXPECTED[model]


@pytest.mark.django_db
def test_a_user_who_recorded_movements_cannot_be_deleted(demo, admin_user):
    node = Node.objects.get(code="N1")
    product = Product.objects.filter(institution=node.institution, tracks_inventory=True).first()
    customer = Customer.objects.filter(institution=node.institution).first()
    stock = stock_movement_record(node=node, product=product, quantity=Decimal("3"), user=admin_user)
    balance = customer_balance_credit(customer=customer, amount=Decimal("5000"), user=admin_user)
    units = customer_units_add(customer=customer, unit_type="almuerzo", quantity=2, user=admin_user)

    with pytest.raises(ProtectedError) as refused:
        admin_user.delete()

    assert {stock, balance, units} <= set(refused.value.protected_objects)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "index"),
    [
        (StockMovement, "stockmove_created_by"),
        (BalanceMovement, "balmove_created_by"),
        (UnitMovement, "unitmove_created_by"),
    ],
    ids=["StockMovement", "BalanceMovement", "UnitMovement"],
)
def test_the_movements_of_a_user_are_read_through_the_partial_index(model, index, admin_user):
    # A table the statistics know to be tiny is read whole whatever its indexes; with that
    # turned off, the lookup deleting a user makes must still find an index to use.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = model.objects.filter(created_by__in=[admin_user.pk]).order_by().explain()

    assert index in plan, plan
