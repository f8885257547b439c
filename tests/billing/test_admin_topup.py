from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BalanceMovement, Customer


@pytest.mark.django_db
def test_topup_from_the_admin_writes_a_ledger_movement(client, data_staff_user):
    customer = Customer.objects.get(code="C-000123")
    client.force_login(data_staff_user)
    response = client.post(
        reverse("admin:billing_balancemovement_add"),
        {"customer": customer.pk, "kind": "topup", "amount": "10000", "note": "Recarga en caja"},
    )
    assert response.status_code == 302, response.content[:3000]
    customer.refresh_from_db()
    assert customer.balance == Decimal("22000.00")
    movement = BalanceMovement.objects.filter(customer=customer).latest("id")
    assert movement.created_by == data_staff_user
    assert movement.amount == Decimal("10000")


@pytest.mark.django_db
def test_negative_topup_is_refused_by_the_form(client, data_staff_user):
    customer = Customer.objects.get(code="C-000123")
    client.force_login(data_staff_user)
    response = client.post(
        reverse("admin:billing_balancemovement_add"),
        {"customer": customer.pk, "kind": "topup", "amount": "-10", "note": ""},
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.balance == Decimal("12000.00")


@pytest.mark.django_db
def test_finance_cannot_record_topups(client, finance_user):
    customer = Customer.objects.get(code="C-000123")
    client.force_login(finance_user)
    response = client.post(
        reverse("admin:billing_balancemovement_add"), {"customer": customer.pk, "kind": "topup", "amount": "10"}
    )
    assert response.status_code == 403
