"""GET /api/v1/pos/config and POST /api/v1/pos/heartbeat."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from billing.models import InvoiceResolution
from nodes.models import Node, Terminal

CONFIG = "/api/v1/pos/config"
HEARTBEAT = "/api/v1/pos/heartbeat"

OFFLINE_KEYS = {
    "closed_inventory_sales",
    "paygo_balance_sales",
    "comandas",
    "product_blocks",
    "daily_max_consumption",
    "self_service",
    "consumable_units",
    "invoice_numbering",
}


@pytest.mark.django_db
def test_config_at_a_terminal_level_node_with_both_offline_flags_on(pos_client, django_assert_max_num_queries):
    # Given N1: both offline flags on, consecutives per register
    client = pos_client("N1-CAJA-01")
    resolution = InvoiceResolution.objects.get(terminal__code="N1-CAJA-01", active=True)

    # When
    with django_assert_max_num_queries(3):  # the key lookup, the resolution, its warnings
        response = client.get(CONFIG)

    # Then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"server_time", "terminal", "node", "offline", "invoicing"}
    assert body["server_time"].endswith("-05:00")
    assert abs(datetime.fromisoformat(body["server_time"]) - timezone.now()) < timedelta(minutes=1)
    assert body["terminal"] == {"code": "N1-CAJA-01", "name": "Caja 1", "kind": "pos"}
    assert body["node"] == {
        "code": "N1",
        "name": "Cafetería Central",
        "allow_offline_closed_inventory_sales": True,
        "use_last_balance_offline": True,
        "balance_sync_interval_seconds": 300,
    }
    assert body["offline"] == {
        "closed_inventory_sales": True,
        "paygo_balance_sales": True,
        "comandas": "deferred",
        "product_blocks": False,
        "daily_max_consumption": False,
        "self_service": False,
        "consumable_units": False,
        "invoice_numbering": "local",
    }
    assert body["invoicing"] == {
        "numbering_level": "terminal",
        "resolution": {
            "number": resolution.number,
            "prefix": "FE",
            "range_from": resolution.range_from,
            "range_to": resolution.range_to,
            "valid_until": resolution.valid_until.isoformat(),
            "next_number": resolution.next_number,
        },
        "warnings": [],
    }


@pytest.mark.django_db
def test_config_at_a_node_level_node_with_both_offline_flags_off(pos_client):
    response = pos_client("N2-CAJA-01").get(CONFIG)

    assert response.status_code == 200
    body = response.json()
    assert body["node"]["allow_offline_closed_inventory_sales"] is False
    assert body["node"]["use_last_balance_offline"] is False
    assert set(body["offline"]) == OFFLINE_KEYS
    assert body["offline"]["closed_inventory_sales"] is False
    assert body["offline"]["paygo_balance_sales"] is False
    assert body["offline"]["invoice_numbering"] == "deferred"
    # The contract: the resolution is present only at terminal level.
    assert body["invoicing"] == {"numbering_level": "node", "warnings": []}


@pytest.mark.django_db
def test_config_at_institution_level_defers_numbering_even_with_offline_flags_on(pos_client):
    body = pos_client("N3-CAJA-01").get(CONFIG).json()

    assert body["offline"]["closed_inventory_sales"] is True
    assert body["offline"]["paygo_balance_sales"] is True
    assert body["offline"]["invoice_numbering"] == "deferred"
    assert body["invoicing"] == {"numbering_level": "institution", "warnings": []}


@pytest.mark.django_db
def test_config_follows_node_flags_changed_in_the_admin(pos_client):
    Node.objects.filter(code="N1").update(allow_offline_closed_inventory_sales=False, balance_sync_interval_seconds=120)

    body = pos_client("N1-CAJA-01").get(CONFIG).json()

    assert body["offline"]["closed_inventory_sales"] is False
    assert body["offline"]["paygo_balance_sales"] is True
    assert body["node"]["balance_sync_interval_seconds"] == 120


@pytest.mark.django_db
def test_config_at_terminal_level_without_an_active_resolution_gives_null(pos_client):
    # The kitchen client of N1 has no resolution of its own.
    body = pos_client("N1-COCINA-01").get(CONFIG).json()

    assert body["terminal"]["kind"] == "kitchen"
    assert body["invoicing"]["numbering_level"] == "terminal"
    assert body["invoicing"]["resolution"] is None


@pytest.mark.django_db
def test_config_shows_each_terminal_its_own_resolution(pos_client):
    mine = pos_client("N1-CAJA-01").get(CONFIG).json()["invoicing"]["resolution"]
    other = pos_client("N1-CAJA-02").get(CONFIG).json()["invoicing"]["resolution"]

    assert mine["number"] == InvoiceResolution.objects.get(terminal__code="N1-CAJA-01").number
    assert other["number"] == InvoiceResolution.objects.get(terminal__code="N1-CAJA-02").number
    assert mine["range_from"] != other["range_from"]


@pytest.mark.django_db
def test_config_skips_an_exhausted_resolution_for_the_next_active_one(pos_client):
    current = InvoiceResolution.objects.get(terminal__code="N1-CAJA-01")
    InvoiceResolution.objects.filter(pk=current.pk).update(next_number=current.range_to + 1)
    InvoiceResolution.objects.create(
        institution=current.institution,
        level=current.level,
        node=current.node,
        terminal=current.terminal,
        number="18764999999",
        resolution_date=current.resolution_date,
        prefix="FE",
        range_from=900_001,
        range_to=905_000,
        valid_from=current.valid_from,
        valid_until=current.valid_until,
        next_number=900_001,
    )

    resolution = pos_client("N1-CAJA-01").get(CONFIG).json()["invoicing"]["resolution"]

    assert resolution["number"] == "18764999999"
    assert resolution["next_number"] == 900_001


# --- heartbeat ----------------------------------------------------------------------


@pytest.mark.django_db
def test_heartbeat_is_stored_on_the_terminal(pos_client, django_assert_num_queries):
    client = pos_client("N1-CAJA-01")
    payload = {
        "online_since": "2026-11-28T09:58:00-05:00",
        "pending_sales": 12,
        "last_seq": 1042,
        "balances_cursor_age_seconds": 280,
    }

    with django_assert_num_queries(2):  # the key lookup and one UPDATE
        response = client.post(HEARTBEAT, payload, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"server_time"}
    assert response.json()["server_time"].endswith("-05:00")
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    assert terminal.reported_online_since == datetime.fromisoformat("2026-11-28T14:58:00+00:00")
    assert terminal.reported_pending_sales == 12
    assert terminal.reported_last_seq == 1042
    assert terminal.reported_balances_age_seconds == 280
    assert timezone.now() - terminal.last_seen_at < timedelta(minutes=1)
    # Only this terminal was touched.
    assert Terminal.objects.exclude(pk=terminal.pk).filter(last_seen_at__isnull=False).count() == 0


@pytest.mark.django_db
def test_heartbeat_fields_are_optional_and_the_latest_report_wins(pos_client):
    client = pos_client("N2-CAJA-01")
    client.post(HEARTBEAT, {"pending_sales": 3, "last_seq": 7}, format="json")

    response = client.post(HEARTBEAT, {}, format="json")

    assert response.status_code == 200
    terminal = Terminal.objects.get(code="N2-CAJA-01")
    assert terminal.last_seen_at is not None
    assert terminal.reported_pending_sales is None
    assert terminal.reported_last_seq is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"online_since": "2026-11-28T09:58:00"}, "online_since"),  # no offset
        ({"online_since": "ayer"}, "online_since"),
        ({"online_since": "2999-01-01T00:00:00-05:00"}, "online_since"),
        ({"pending_sales": -1}, "pending_sales"),
        ({"pending_sales": 2**40}, "pending_sales"),
        ({"last_seq": -5}, "last_seq"),
        ({"last_seq": 2**64}, "last_seq"),
        ({"balances_cursor_age_seconds": "mucho"}, "balances_cursor_age_seconds"),
        ({"balances_cursor_age_seconds": 1.5}, "balances_cursor_age_seconds"),
    ],
)
def test_heartbeat_refuses_invalid_fields_in_the_error_shape(pos_client, payload, field):
    response = pos_client("N1-CAJA-01").post(HEARTBEAT, payload, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["details"]["fields"]
    assert Terminal.objects.get(code="N1-CAJA-01").last_seen_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("path", [CONFIG, HEARTBEAT])
def test_config_and_heartbeat_need_a_key(client, demo, path):
    response = client.generic("GET" if path == CONFIG else "POST", path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_config_warns_the_cashier_when_90_percent_of_the_range_is_used(pos_client):
    # Given N2's node-level range with 90 % of its numbers used
    resolution = InvoiceResolution.objects.get(level="node", node__code="N2", active=True)
    size = resolution.range_to - resolution.range_from + 1
    InvoiceResolution.objects.filter(pk=resolution.pk).update(next_number=resolution.range_from + size * 9 // 10)

    body = pos_client("N2-CAJA-01").get(CONFIG).json()

    assert body["invoicing"]["warnings"] == [
        f"Se ha usado el 90 % del rango de la resolución {resolution.number}; quedan {size // 10} consecutivos."
    ]
    # Other nodes' registers are not numbered from that range
    assert pos_client("N1-CAJA-01").get(CONFIG).json()["invoicing"]["warnings"] == []


@pytest.mark.django_db
def test_config_says_why_a_register_cannot_invoice(pos_client):
    InvoiceResolution.objects.filter(level="institution", institution__code="EMP-ANDINA").update(active=False)

    warnings = pos_client("N3-CAJA-01").get(CONFIG).json()["invoicing"]["warnings"]

    assert warnings == ["No hay una resolución de facturación activa para esta caja."]
    assert pos_client("N3-COCINA-01").get(CONFIG).json()["invoicing"]["warnings"] == []
