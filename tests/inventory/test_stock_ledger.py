from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum

from inventory.models import NodeStock, Product, StockMovement, StockMovementKind
from inventory.services import StockError, stock_count_record, stock_movement_record
from nodes.models import Node
from paygo.append_only import AppendOnlyError


@pytest.mark.django_db
def test_node_stock_equals_the_sum_of_its_movements(demo):
    product = Product.objects.get(sku="SKU-EMPANADA")
    node = Node.objects.get(code="N1")
    stock_movement_record(node=node, product=product, quantity=Decimal("10"))
    stock_movement_record(node=node, product=product, quantity=Decimal("-3"), kind=StockMovementKind.ADJUSTMENT)
    for row in NodeStock.objects.all():
        ledger = StockMovement.objects.filter(node=row.node, product=row.product).aggregate(s=Sum("quantity"))["s"]
        assert row.quantity == ledger
    assert NodeStock.objects.get(node=node, product=product).quantity == Decimal("47")


@pytest.mark.django_db
def test_count_appends_the_difference(demo):
    product = Product.objects.get(sku="SKU-GASEOSA")
    node = Node.objects.get(code="N1")
    movement = stock_count_record(node=node, product=product, counted=Decimal("20"), note="conteo")
    assert movement.quantity == Decimal("-4")
    assert NodeStock.objects.get(node=node, product=product).quantity == Decimal("20")
    assert stock_count_record(node=node, product=product, counted=Decimal("20")) is None


@pytest.mark.django_db
def test_untracked_products_and_foreign_nodes_are_refused(demo):
    node = Node.objects.get(code="N1")
    with pytest.raises(StockError):
        stock_movement_record(node=node, product=Product.objects.get(sku="SKU-JUGO"), quantity=Decimal("1"))
    with pytest.raises(StockError):
        stock_movement_record(node=node, product=Product.objects.get(sku="AND-PAN"), quantity=Decimal("1"))
    with pytest.raises(StockError):
        stock_movement_record(
            node=node, product=Product.objects.get(sku="SKU-AGUA"), quantity=Decimal("-1"), kind="sale"
        )


@pytest.mark.django_db
def test_stock_ledger_is_append_only_and_sale_movements_need_a_line(demo):
    movement = StockMovement.objects.first()
    with pytest.raises(AppendOnlyError):
        movement.delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        StockMovement.objects.create(
            node=movement.node,
            product=movement.product,
            kind=StockMovementKind.SALE,
            quantity=Decimal("-1"),
            occurred_at=movement.occurred_at,
        )


@pytest.mark.django_db
def test_product_sku_unique_per_institution_only(demo):
    product = Product.objects.get(sku="SKU-AGUA")
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.create(institution=product.institution, sku="SKU-AGUA", name="x", price=1)
    other = Node.objects.get(code="N3").institution
    Product.objects.create(institution=other, sku="SKU-AGUA", name="Agua", price=1)
