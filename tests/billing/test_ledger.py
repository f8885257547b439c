from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.models import BalanceFeed, BalanceMovement, BalanceMovementKind, Customer, UnitBalance, UnitMovement
from billing.services import AccountError, customer_balance_credit, customer_units_add
from paygo.append_only import AppendOnlyError


@pytest.mark.django_db
def test_every_materialized_balance_equals_its_ledger(demo):
    for customer in Customer.objects.all():
        ledger = customer.balance_movements.aggregate(s=Sum("amount"))["s"] or Decimal("0")
        assert customer.balance == ledger
    for units in UnitBalance.objects.all():
        ledger = UnitMovement.objects.filter(customer=units.customer, unit_type=units.unit_type).aggregate(
            s=Sum("quantity")
        )["s"]
        assert units.quantity == ledger


@pytest.mark.django_db
def test_topup_appends_a_movement_and_moves_the_feed(demo):
    customer = Customer.objects.get(code="C-000123")
    before_seq = BalanceFeed.objects.get(institution=customer.institution).last_seq

    customer_balance_credit(customer=customer, amount=Decimal("5000"), note="recarga")

    customer.refresh_from_db()
    assert customer.balance == Decimal("17000.00")
    assert customer.change_seq == before_seq + 1
    assert customer.balance_movements.filter(kind=BalanceMovementKind.TOPUP).count() == 2


@pytest.mark.django_db
def test_topups_must_be_positive_and_sales_cannot_be_entered_by_hand(demo):
    customer = Customer.objects.get(code="C-000123")
    with pytest.raises(AccountError):
        customer_balance_credit(customer=customer, amount=Decimal("-1"))
    with pytest.raises(AccountError):
        customer_balance_credit(customer=customer, amount=Decimal("0"), kind=BalanceMovementKind.CORRECTION)
    with pytest.raises(AccountError):
        customer_balance_credit(customer=customer, amount=Decimal("100"), kind=BalanceMovementKind.SALE)


@pytest.mark.django_db
def test_balance_ledger_is_append_only(demo):
    movement = BalanceMovement.objects.first()
    movement.amount = Decimal("1")
    with pytest.raises(AppendOnlyError):
        movement.save()
    with pytest.raises(AppendOnlyError):
        movement.delete()
    with pytest.raises(AppendOnlyError):
        BalanceMovement.objects.filter(pk=movement.pk).update(amount=Decimal("2"))
    with pytest.raises(AppendOnlyError):
        BalanceMovement.objects.all().delete()


@pytest.mark.django_db
def test_units_add_and_correct(demo):
    customer = Customer.objects.get(code="C-000123")
    customer_units_add(customer=customer, unit_type="ALMUERZO", quantity=3)
    customer_units_add(customer=customer, unit_type="ALMUERZO", quantity=-1)
    assert UnitBalance.objects.get(customer=customer, unit_type="ALMUERZO").quantity == 14
