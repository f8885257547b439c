"""Terminal keys end to end: rotated and revoked through the real admin, never stored in
clear, compared in constant time, and guessing them is rate-limited at the configured rate.
"""

from __future__ import annotations

import hmac
import re
from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.urls import reverse
from rest_framework.test import APIClient

from nodes.keys import KEY_PREFIX
from nodes.models import Terminal
from tests.sales.payloads import assert_error_shape

pytestmark = pytest.mark.django_db

CONFIG = "/api/v1/pos/config"
SHOWN_KEY = re.compile(r'<code class="terminal-key">([^<]+)</code>')


def with_key(key: str, address: str = "192.0.2.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def demo_key(demo, code: str) -> str:
    return next(t["key"] for t in demo["terminals"] if t["code"] == code)


def changelist_action(client, action: str, terminals: list[Terminal]):
    return client.post(
        reverse("admin:nodes_terminal_changelist"),
        {"action": action, "_selected_action": [t.pk for t in terminals]},
    )


def test_rotation_through_the_admin_action_switches_keys_at_once(client, demo, data_staff_user):
    terminals = list(Terminal.objects.filter(code__in=["N1-CAJA-01", "N3-CAJA-01"]).order_by("pk"))
    old_keys = [demo_key(demo, t.code) for t in terminals]
    for key in old_keys:
        assert with_key(key).get(CONFIG).status_code == 200
    client.force_login(data_staff_user)

    response = changelist_action(client, "rotate_keys", terminals)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new_keys = SHOWN_KEY.findall(response.content.decode())
    assert len(new_keys) == 2
    for terminal, old, new in zip(terminals, old_keys, new_keys, strict=True):
        assert new.startswith(KEY_PREFIX)
        assert_error_shape(with_key(old).get(CONFIG), 401, "authentication_failed")
        assert with_key(new).get(CONFIG).json()["terminal"]["code"] == terminal.code
    # Shown once: the terminal's page afterwards holds only the prefix.
    page = client.get(reverse("admin:nodes_terminal_change", args=[terminals[0].pk])).content.decode()
    assert new_keys[0] not in page
    assert new_keys[0][: len(KEY_PREFIX) + 6] in page


def test_rotation_from_the_terminals_own_page(client, demo, data_staff_user):
    terminal = Terminal.objects.get(code="N1-KIOSCO-01")
    old = demo_key(demo, terminal.code)
    client.force_login(data_staff_user)

    (new,) = SHOWN_KEY.findall(
        client.post(reverse("admin:nodes_terminal_rotate_key", args=[terminal.pk])).content.decode()
    )

    assert_error_shape(with_key(old).get(CONFIG), 401, "authentication_failed")
    assert with_key(new).get(CONFIG).status_code == 200


def test_revocation_through_the_admin_action_is_401_at_once(client, demo, data_staff_user):
    terminal = Terminal.objects.get(code="N1-CAJA-02")
    key = demo_key(demo, terminal.code)
    api = with_key(key)
    assert api.get(CONFIG).status_code == 200  # the same client, already used: no caching of the key
    client.force_login(data_staff_user)

    response = changelist_action(client, "revoke_keys", [terminal])

    assert response.status_code == 302
    for method, path in (("get", CONFIG), ("get", "/api/v1/pos/catalog"), ("post", "/api/v1/pos/heartbeat")):
        assert_error_shape(getattr(api, method)(path, format="json"), 401, "authentication_failed")
    assert with_key(demo_key(demo, "N1-CAJA-01")).get(CONFIG).status_code == 200  # others keep working


def _text_columns() -> list[tuple[str, str]]:
    """(table, column) of every text-like column of every model, history tables included."""
    text_fields = (models.CharField, models.TextField, models.JSONField)
    return [
        (model._meta.db_table, field.column)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.concrete_fields
        if isinstance(field, text_fields)
    ]


def test_no_key_material_is_stored_anywhere_in_the_database(client, demo, data_staff_user):
    client.force_login(data_staff_user)
    terminals = list(Terminal.objects.order_by("pk"))
    response = changelist_action(client, "rotate_keys", terminals)
    keys = SHOWN_KEY.findall(response.content.decode())
    single = client.post(reverse("admin:nodes_terminal_rotate_key", args=[terminals[0].pk]))
    keys += SHOWN_KEY.findall(single.content.decode())
    assert len(keys) == len(terminals) + 1
    # The secret part of each key (prefix-less), long enough that a match cannot be chance.
    needles = keys + [key.removeprefix(KEY_PREFIX) for key in keys]
    columns = _text_columns()
    assert ("nodes_historicalterminal", "key_hash") in columns

    with connection.cursor() as cursor:
        for table, column in columns:
            # Table and column names come from the models; the key is passed as a parameter.
            quoted_table, quoted_column = connection.ops.quote_name(table), connection.ops.quote_name(column)
            for needle in needles:
                cursor.execute(
                    f"SELECT 1 FROM {quoted_table} WHERE CAST({quoted_column} AS TEXT) LIKE %s", ["%" + needle + "%"]
                )
                assert cursor.fetchone() is None, f"key material in {table}.{column}"
    # What is stored is the digest, in the terminal and in its history.
    terminal = Terminal.objects.get(pk=terminals[0].pk)
    assert len(terminal.key_hash) == 64
    assert terminal.history.filter(key_hash=terminal.key_hash).exists()


def test_the_stored_digest_is_compared_in_constant_time(demo):
    key = demo_key(demo, "N1-CAJA-01")
    stored = Terminal.objects.get(code="N1-CAJA-01").key_hash

    with mock.patch("nodes.keys.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        assert with_key(key).get(CONFIG).status_code == 200

    compare.assert_called_once_with(stored, stored)


def test_repeated_bad_keys_from_one_address_hit_the_configured_limit(demo):
    # The configured rate (PAYGO_AUTH_FAILURE_RATE, 30/min by default), not a lowered one.
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["terminal_auth_failure"]
    limit = int(rate.split("/")[0])
    paths = [CONFIG, "/api/v1/pos/catalog", "/api/v1/pos/balances", "/api/v1/kitchen/comandas"]
    for attempt in range(limit):
        guess = with_key(f"{KEY_PREFIX}guess-{attempt}", address="203.0.113.50")
        assert_error_shape(guess.get(paths[attempt % len(paths)]), 401, "authentication_failed")

    blocked = with_key(f"{KEY_PREFIX}guess-more", address="203.0.113.50").post(
        "/api/v1/pos/sales/batches", {}, format="json"
    )

    error = assert_error_shape(blocked, 429, "rate_limited")
    assert blocked["Content-Type"].startswith("application/json")
    retry_after = int(blocked["Retry-After"])
    assert 0 < retry_after <= 61
    assert error["details"]["retry_after_seconds"] == retry_after
    # Another address with a valid key is not affected.
    assert with_key(demo_key(demo, "N1-CAJA-01"), address="198.51.100.9").get(CONFIG).status_code == 200
