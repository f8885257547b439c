"""The resolutions admin (usage columns, alerts, validation) and the invoice block on
the sale page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from billing.admin import WAITING_INVOICE_TEXT
from billing.invoicing import invoice_number_take, invoices_deferred_assign
from billing.models import InvoiceResolution
from nodes.models import Node, Terminal
from sales.models import Sale
from tests.billing.test_invoicing import at, resolution_of, sale_record


def _form(resolution: InvoiceResolution, **changes) -> dict:
    data = {
        "institution": resolution.institution_id,
        "level": resolution.level,
        "node": resolution.node_id or "",
        "terminal": resolution.terminal_id or "",
        "number": resolution.number,
        "resolution_date": resolution.resolution_date.isoformat(),
        "prefix": resolution.prefix,
        "range_from": resolution.range_from,
        "range_to": resolution.range_to,
        "valid_from": resolution.valid_from.isoformat(),
        "valid_until": resolution.valid_until.isoformat(),
        "next_number": resolution.next_number,
        "active": "on" if resolution.active else "",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin_user", "finance_user", "data_staff_user"])
def test_resolution_pages_load_with_usage_columns(client, role, request):
    client.force_login(request.getfixturevalue(role))
    resolution = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=F("range_from") + 4600)

    listing = client.get(reverse("admin:billing_invoiceresolution_changelist"))
    change = client.get(reverse("admin:billing_invoiceresolution_change", args=[resolution.pk]))

    assert listing.status_code == 200
    for heading in ("usados", "disponibles", "% usado", "alerta"):
        assert heading in listing.text.lower()
    assert "92,0 %" in listing.text
    assert "⚠ Alerta" in listing.text
    assert "resolución(es) activa(s) con alertas" in listing.text
    assert change.status_code == 200
    assert "4600 de 5000 usados (92,0 %), 400 disponibles" in change.text
    assert "quedan 400 consecutivos" in change.text


@pytest.mark.django_db
def test_the_alerts_filter_lists_only_resolutions_with_warnings(client, admin_user):
    client.force_login(admin_user)
    expiring = resolution_of("N3")
    InvoiceResolution.objects.filter(pk=expiring.pk).update(valid_until=timezone.localdate() + timedelta(days=10))
    url = reverse("admin:billing_invoiceresolution_changelist")

    with_alerts = client.get(url, {"alertas": "con"})
    without = client.get(url, {"alertas": "sin"})

    assert list(with_alerts.context["cl"].result_list) == [expiring]
    assert expiring not in without.context["cl"].result_list
    assert len(without.context["cl"].result_list) == InvoiceResolution.objects.count() - 1


@pytest.mark.django_db
def test_adding_an_overlapping_range_is_refused(client, data_staff_user):
    client.force_login(data_staff_user)
    n2 = resolution_of("N2")
    count = InvoiceResolution.objects.count()

    response = client.post(
        reverse("admin:billing_invoiceresolution_add"),
        _form(n2, number="18764000777", range_from=n2.range_to - 5, range_to=n2.range_to + 100, next_number=""),
    )

    assert response.status_code == 200
    assert "se cruza con el de la resolución" in response.text
    assert InvoiceResolution.objects.count() == count


@pytest.mark.django_db
def test_adding_a_valid_resolution_starts_at_the_beginning_of_its_range(client, data_staff_user):
    client.force_login(data_staff_user)
    n2 = resolution_of("N2")

    response = client.post(
        reverse("admin:billing_invoiceresolution_add"),
        _form(n2, number="18764000778", range_from=700_001, range_to=705_000, next_number=""),
    )

    assert response.status_code == 302, response.text[:3000]
    created = InvoiceResolution.objects.get(number="18764000778")
    assert created.next_number == 700_001
    assert created.node == n2.node


@pytest.mark.django_db
def test_owner_from_another_institution_is_refused(client, data_staff_user):
    client.force_login(data_staff_user)
    n2 = resolution_of("N2")
    response = client.post(
        reverse("admin:billing_invoiceresolution_add"),
        _form(n2, number="1", range_from=700_001, range_to=705_000, node=Node.objects.get(code="N3").pk),
    )
    assert response.status_code == 200
    assert "El nodo no pertenece a la institución" in response.text


@pytest.mark.django_db
def test_terminal_level_resolution_gets_the_terminals_node(client, data_staff_user):
    client.force_login(data_staff_user)
    own = InvoiceResolution.objects.get(terminal__code="N1-CAJA-01")
    response = client.post(
        reverse("admin:billing_invoiceresolution_add"),
        _form(own, number="18764000779", node="", range_from=710_001, range_to=710_500, next_number=""),
    )
    assert response.status_code == 302, response.text[:3000]
    created = InvoiceResolution.objects.get(number="18764000779")
    assert created.node == own.terminal.node


@pytest.mark.django_db
def test_next_number_cannot_be_moved_back_in_the_admin(client, data_staff_user):
    client.force_login(data_staff_user)
    caja = Terminal.objects.get(code="N2-CAJA-01")
    sale = sale_record(caja, occurred_at=at(8), seq=1)
    invoices_deferred_assign(sale_ids=[sale.pk])
    n2 = resolution_of("N2")

    response = client.post(
        reverse("admin:billing_invoiceresolution_change", args=[n2.pk]), _form(n2, next_number=n2.range_from)
    )

    assert response.status_code == 200
    assert "Ya hay ventas facturadas hasta el" in response.text


@pytest.mark.django_db
def test_sale_page_shows_the_invoice_block(client, finance_user):
    client.force_login(finance_user)
    caja = Terminal.objects.get(code="N2-CAJA-01")
    resolution = resolution_of("N2")
    online = sale_record(caja, occurred_at=at(8), seq=1, offline=False)
    _, (number,) = invoice_number_take(terminal=caja, on=timezone.localdate())
    online.invoice_resolution, online.invoice_prefix, online.invoice_number = resolution, resolution.prefix, number
    online.invoice_source = "server"
    online.save()
    deferred = sale_record(caja, occurred_at=at(9), seq=2)

    numbered_page = client.get(reverse("admin:sales_sale_change", args=[online.pk]))
    deferred_page = client.get(reverse("admin:sales_sale_change", args=[deferred.pk]))

    assert numbered_page.status_code == 200
    for text in (
        "Factura",
        "Consecutivo",
        "Resolución",
        "Rango",
        f"FE{number}",
        f"{resolution.number} del {resolution.resolution_date:%d/%m/%Y}",
        f"FE{resolution.range_from} – FE{resolution.range_to}",
    ):
        assert text in numbered_page.text, text
    assert deferred_page.status_code == 200
    assert deferred_page.text.count("Pendiente: se numera al sincronizar") == 4

    invoices_deferred_assign(sale_ids=[deferred.pk])
    after_sync = client.get(reverse("admin:sales_sale_change", args=[deferred.pk]))
    assert "Pendiente: se numera al sincronizar" not in after_sync.text
    assert f"FE{number + 1}" in after_sync.text


@pytest.mark.django_db
def test_terminal_level_sale_without_number_is_not_shown_as_pending(client, admin_user):
    client.force_login(admin_user)
    sale = sale_record(Terminal.objects.get(code="N1-CAJA-01"), occurred_at=at(8), seq=1)
    page = client.get(reverse("admin:sales_sale_change", args=[sale.pk]))
    assert page.status_code == 200
    assert "Pendiente: se numera al sincronizar" not in page.text


@pytest.mark.django_db
def test_adding_a_resolution_in_the_admin_numbers_the_waiting_offline_sales(
    client, data_staff_user, finance_user, django_capture_on_commit_callbacks
):
    # Given two offline sales of N2 reconciled while its range was used up
    n2 = resolution_of("N2")
    InvoiceResolution.objects.filter(pk=n2.pk).update(next_number=F("range_to") + 1)
    caja = Terminal.objects.get(code="N2-CAJA-01")
    waiting = [sale_record(caja, occurred_at=at(9), seq=2), sale_record(caja, occurred_at=at(8), seq=1)]
    invoices_deferred_assign(sale_ids=[s.pk for s in waiting])
    Sale.objects.filter(pk__in=[s.pk for s in waiting]).update(reconciled_at=timezone.now())
    client.force_login(finance_user)
    listed = client.get(reverse("admin:sales_sale_changelist") + "?invoice=pending")
    assert listed.context["cl"].result_count == 2
    page = client.get(reverse("admin:sales_sale_change", args=[waiting[0].pk]))
    assert page.text.count(WAITING_INVOICE_TEXT) == 4

    # When a Datos Base user adds the next resolution
    client.force_login(data_staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:billing_invoiceresolution_add"),
            _form(n2, number="18764000779", range_from=710_001, range_to=710_100, next_number=""),
        )
    assert response.status_code == 302, response.text[:3000]

    # Then both are numbered from it, the older sale first
    assert [Sale.objects.get(pk=s.pk).invoice_number for s in waiting] == [710_002, 710_001]
    client.force_login(finance_user)
    assert client.get(reverse("admin:sales_sale_changelist") + "?invoice=pending").context["cl"].result_count == 0
