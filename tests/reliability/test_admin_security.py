"""The admin's doors: every URL behind the login, «Finanzas» kept out of every write, brute
force on the login locked out.

Models and URLs are enumerated from ``admin.site`` itself (its registry and its URLconf), so
a model or view added later is checked without touching this module.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.contrib.contenttypes.models import ContentType
from django.forms.models import model_to_dict
from django.test import RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from rest_framework.test import APIClient
from simple_history.admin import SimpleHistoryAdmin

from inventory.verification import ledgers_verify
from nodes.models import Terminal
from paygo.admin_site import SECTIONS
from sales.reconcile import sales_reconcile
from tests.sales.payloads import BATCHES_URL, batch, cash_sale

pytestmark = pytest.mark.django_db

REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)
MODEL_IDS = [model._meta.label_lower for model, _ in REGISTRY]
PAYGO_APPS = {"nodes", "inventory", "billing", "sales"}


@pytest.fixture
def admin_world(demo, client):
    """A row in every table the admin shows, made the way production makes them."""
    pos = APIClient()
    pos.credentials(
        HTTP_AUTHORIZATION="Bearer " + next(t["key"] for t in demo["terminals"] if t["code"] == "N1-CAJA-01")
    )
    sales = [
        cash_sale(sku="SKU-SANDWICH", price="6500.00", quantity="5", seq=10),  # 4 in stock: goes negative
        cash_sale(sku="SKU-AREPA", price="3200.00", seq=12),  # seq 11 missing: a sequence gap
        cash_sale(sku="SKU-NADA", price="1.00", seq=13),  # unknown: quarantined
    ]
    assert pos.post(BATCHES_URL, batch(*sales), format="json").status_code == 200
    sales_reconcile()
    ledgers_verify()
    client.post(reverse("admin:login"), {"username": "finanzas", "password": "wrong"})  # an axes attempt
    schedule = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="demo sweep", task="sales.tasks.unreconciled_sales_sweep", interval=schedule)
    ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=1))
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=4.6, longitude=-74.1)
    return demo


def rows(model) -> list[dict]:
    return [model_to_dict(obj) for obj in model._default_manager.order_by("pk")]


def history_count(model) -> int:
    history = getattr(model, "history", None)
    return history.count() if history is not None else 0


def form_data(model_admin, obj, user) -> dict:
    """The object's own form as a browser would post it back, with a visible change."""
    request = RequestFactory().get("/")
    request.user = user
    form = model_admin.get_form(request, obj)(instance=obj)
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[name] = "on"
        elif value in (False, None):
            continue
        elif isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        else:
            data[name] = str(value)
    if "name" in data:
        data["name"] = "cambiado por finanzas"
    return data


# --- «Finanzas» cannot change anything the admin shows ----------------------------------------


@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=MODEL_IDS)
def test_finance_gets_403_on_every_write_of_every_admin_model(client, admin_world, finance_user, model, model_admin):
    client.force_login(finance_user)
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    obj = model._default_manager.order_by("pk").first()
    before, history_before = rows(model), history_count(model)

    assert client.get(reverse(f"{info}_add")).status_code == 403
    if obj is None:
        # Only django-axes' failure log stays empty (it is off: AXES_ENABLE_ACCESS_FAILURE_LOG).
        assert model._meta.app_label not in PAYGO_APPS, f"the fixture should give {model._meta.label} a row"
        assert client.post(reverse(f"{info}_add"), {}).status_code == 403
        return
    data = form_data(model_admin, obj, finance_user)
    assert client.post(reverse(f"{info}_add"), data).status_code == 403
    assert client.post(reverse(f"{info}_change", args=[obj.pk]), data).status_code == 403
    assert client.get(reverse(f"{info}_delete", args=[obj.pk])).status_code == 403
    assert client.post(reverse(f"{info}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    if isinstance(model_admin, SimpleHistoryAdmin) and history_before:
        # "Revert to this version": a past version posted back through the history form.
        version = model.history.filter(id=obj.pk).earliest("history_date")
        url = reverse(f"{info}_simple_history", args=[obj.pk, version.history_id])
        assert client.post(url, data).status_code == 403
    # Bulk actions (delete, key rotation and revocation...): refused or not offered, never run.
    # 200 is the changelist shown again to a reader who has no action at all.
    for action in admin.site._actions | dict.fromkeys(model_admin.actions or []):
        name = action if isinstance(action, str) else action.__name__
        response = client.post(
            reverse(f"{info}_changelist"), {"action": name, "_selected_action": [obj.pk], "post": "yes"}
        )
        assert response.status_code in (200, 302, 403), (name, response.status_code)
        page = response.content.decode()
        assert not any(t["key"] in page for t in admin_world["terminals"]), "a key was shown to finance"
    # Custom views of this admin (e.g. the terminal's rotate-key page): refused on POST.
    standard = {"changelist", "add", "change", "delete", "history", "simple_history", "autocomplete"}
    for pattern in model_admin.get_urls():
        suffix = (pattern.name or "").removeprefix(f"{model._meta.app_label}_{model._meta.model_name}_")
        if pattern.name and suffix not in standard:
            assert client.post(reverse(f"admin:{pattern.name}", args=[obj.pk])).status_code == 403, pattern.name

    assert rows(model) == before
    assert history_count(model) == history_before


def test_nobody_reverts_a_row_the_system_owns(client, admin_world, admin_user, finance_user):
    from inventory.models import NegativeStockEvent

    event = NegativeStockEvent.objects.get()
    client.force_login(finance_user)  # resolving it (a count) gives the event a past version
    client.post(
        reverse("admin:report_inventario-negativo_resolve", args=[event.pk]),
        {"method": "count", "quantity": "0", "note": "conteo"},
    )
    version = event.history.earliest("history_date")
    before = rows(NegativeStockEvent)
    client.force_login(admin_user)  # even a superuser: the admin declares these rows read-only
    url = reverse("admin:inventory_negativestockevent_simple_history", args=[event.pk, version.history_id])
    response = client.post(url, form_data(admin.site._registry[NegativeStockEvent], event, admin_user))
    assert response.status_code == 403
    assert rows(NegativeStockEvent) == before


def test_finance_cannot_rotate_or_revoke_keys_through_the_changelist_actions(client, admin_world, finance_user):
    client.force_login(finance_user)
    before = dict(Terminal.objects.values_list("code", "key_hash"))
    for action in ("rotate_keys", "revoke_keys"):
        client.post(
            reverse("admin:nodes_terminal_changelist"),
            {"action": action, "_selected_action": list(Terminal.objects.values_list("pk", flat=True))},
        )
    assert dict(Terminal.objects.values_list("code", "key_hash")) == before


def test_finance_cannot_top_up_or_correct_a_balance(client, admin_world, finance_user):
    from billing.models import BalanceMovement, Customer

    client.force_login(finance_user)
    customer = Customer.objects.get(code="C-000123")
    movements = BalanceMovement.objects.count()
    for kind, amount in (("topup", "10000"), ("correction", "-5000"), ("refund", "100")):
        response = client.post(
            reverse("admin:billing_balancemovement_add"),
            {"customer": customer.pk, "kind": kind, "amount": amount, "note": "x"},
        )
        assert response.status_code == 403
    assert BalanceMovement.objects.count() == movements
    assert Customer.objects.get(pk=customer.pk).balance == customer.balance


def test_finance_reads_the_reports(client, admin_world, finance_user):
    client.force_login(finance_user)
    assert client.get(reverse("admin:reports_index")).status_code == 200


# --- «Datos Base» reaches its own models --------------------------------------------------------

DATOS_BASE_SECTION = next(members for name, members in SECTIONS if name == "Datos Base")


def _writable_by(user) -> list[tuple]:
    request = RequestFactory().get("/")
    request.user = user
    return [
        (model, model_admin)
        for model, model_admin in REGISTRY
        if model_admin.has_add_permission(request)
        or model_admin.has_change_permission(request)
        or model_admin.has_delete_permission(request)
    ]


def test_datos_base_reaches_add_change_and_delete_of_its_models(client, admin_world, data_staff_user):
    client.force_login(data_staff_user)
    request = RequestFactory().get("/")
    request.user = data_staff_user
    writable = _writable_by(data_staff_user)
    labels = {(m._meta.app_label, m._meta.object_name) for m, _ in writable}
    # Everything the index shows under «Datos Base» is theirs to edit; the ledgers take new movements.
    assert set(DATOS_BASE_SECTION) <= labels
    assert {("billing", "BalanceMovement"), ("inventory", "StockMovement")} <= labels
    for model, model_admin in writable:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = model._default_manager.order_by("pk").first()
        if model_admin.has_add_permission(request):
            assert client.get(reverse(f"{info}_add")).status_code == 200, info
        if model_admin.has_change_permission(request, obj):
            page = client.get(reverse(f"{info}_change", args=[obj.pk]))
            assert page.status_code == 200, info
            assert 'name="_save"' in page.content.decode(), info
        if model_admin.has_delete_permission(request, obj):
            assert client.get(reverse(f"{info}_delete", args=[obj.pk])).status_code == 200, info
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    assert client.get(reverse("admin:nodes_terminal_rotate_key", args=[terminal.pk])).status_code == 200


def test_finance_writes_nothing_while_datos_base_writes_only_base_data(finance_user, data_staff_user):
    assert _writable_by(finance_user) == []
    base_apps = {"nodes", "inventory", "billing"}
    assert {m._meta.app_label for m, _ in _writable_by(data_staff_user)} <= base_apps


# --- every admin URL is behind the login ---------------------------------------------------------

_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\((?:\?P<(?P<name>\w+)>)?[^()]*\)")

# The two exceptions, each by design of django.contrib.admin:
ANONYMOUS_EXCEPTIONS = {
    # The login form itself must be reachable to log in (a POST re-renders it with an error).
    "admin:login": (200, None),
    # Logging out while logged out sends the visitor to the index, which sends them to the login.
    "admin:logout": (302, "/admin/"),
}


def _fill(pattern, model, position: list[int]) -> str:
    """The pattern's text with each parameter replaced by a value that resolves."""
    first = model._default_manager.order_by("pk").first() if model is not None else None
    pk = str(first.pk) if first is not None else "1"
    history = getattr(model, "history", None) if model is not None else None
    version = None
    if history is not None and first is not None:
        version = history.filter(id=first.pk).values_list("history_id", flat=True).first()
    values = {
        "object_id": pk,
        "pk": pk,
        "id": pk,
        "app_label": "nodes",
        "content_type_id": str(ContentType.objects.get_for_model(model).pk) if model else "1",
        "url": "no-such-page/",
    }
    positional = [pk, str(version or 1)]

    def value(name: str | None) -> str:
        if name:
            return values[name]
        position[0] += 1
        return positional[position[0] - 1]

    text = str(pattern.pattern)
    if text.startswith("^") or text.endswith("$"):
        return _REGEX_GROUP.sub(lambda m: value(m.group("name")), text).lstrip("^").rstrip("$")
    return _ROUTE_PARAM.sub(lambda m: value(m.group("name")), text)


def admin_urls() -> list[tuple[str, str]]:
    """(name, path) of every URL pattern under /admin/, parameters filled with existing rows."""
    root = get_resolver()
    site = next(p for p in root.url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "admin/")
    models = {f"{m._meta.app_label}/{m._meta.model_name}/": m for m in admin.site._registry}
    found: list[tuple[str, str]] = []

    def walk(patterns, prefix: str, model) -> None:
        for pattern in patterns:
            part = _fill(pattern, model, [0])
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + part, models.get(str(pattern.pattern), model))
            else:
                assert isinstance(pattern, URLPattern)
                found.append((f"admin:{pattern.name}" if pattern.name else "(unnamed)", prefix + part))

    walk(site.url_patterns, "/admin/", None)
    return found


def test_every_admin_url_sends_anonymous_visitors_to_the_login(client, admin_world, capsys):
    urls = admin_urls()
    checked = 0
    for name, path in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if name in ANONYMOUS_EXCEPTIONS:
                status, location = ANONYMOUS_EXCEPTIONS[name]
                assert response.status_code == status, (name, path, method)
                assert response.get("Location") == location, (name, path, method)
                assert SESSION_KEY not in client.session
                continue
            assert response.status_code == 302, (name, path, method, response.status_code)
            assert response["Location"].startswith(reverse("admin:login") + "?next="), (name, path)
            checked += 1
    # Guards the walk: model, report, history, key and catch-all views were all found.
    names = {name for name, _ in urls}
    assert {"admin:nodes_terminal_rotate_key", "admin:nodes_node_simple_history", "admin:reports_index"} <= names
    assert len(urls) > 150
    with capsys.disabled():
        print(f"\nadmin URLs checked anonymously: {len(urls)} patterns, {checked} GET/POST requests redirected")


# --- brute force on the admin login ------------------------------------------------------------


def _login(client, username: str, password: str):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})


@override_settings(AXES_ENABLED=True)
def test_admin_login_locks_out_after_the_failure_limit_even_with_the_right_password(client, demo):
    finance = demo["finance"]
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, finance["username"], "not-the-password")
        assert response.status_code == 200  # the form again, with its error
    locked = _login(client, finance["username"], "not-the-password")
    assert locked.status_code == 429

    refused = _login(client, finance["username"], finance["password"])

    assert refused.status_code == 429
    assert SESSION_KEY not in client.session
    # Locked by username and address together: another user at the same address still logs in.
    other = demo["data_staff"]
    assert _login(client, other["username"], other["password"]).status_code == 302
