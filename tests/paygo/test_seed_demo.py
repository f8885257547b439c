"""``seed_demo`` writes what the contract describes, deterministically."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Customer, InvoiceResolution
from inventory.models import NodeStock
from nodes.keys import terminal_by_key


def _seed(tmp_path, name):
    path = tmp_path / name
    call_command("seed_demo", "--output", str(path), "--customers", "5", "--allow-without-debug")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.django_db
def test_seed_demo_matches_the_contract_and_is_deterministic(tmp_path):
    first = _seed(tmp_path, "a.json")
    second = _seed(tmp_path, "b.json")
    assert first == second

    assert set(first) >= {"admin", "finance", "institutions", "nodes", "terminals", "products", "customers"}
    assert len(first["institutions"]) >= 2
    nodes = {n["code"]: n for n in first["nodes"]}
    assert any(n["allow_offline_closed_inventory_sales"] and n["use_last_balance_offline"] for n in nodes.values())
    assert any(
        not n["allow_offline_closed_inventory_sales"] and not n["use_last_balance_offline"] for n in nodes.values()
    )
    assert {"terminal", "node"} <= {n["numbering_level"] for n in nodes.values()}
    assert {"pos", "kiosk", "kitchen"} <= {t["kind"] for t in first["terminals"]}
    products = first["products"]
    assert any(p["tracks_inventory"] for p in products)
    assert any(not p["tracks_inventory"] for p in products)
    assert any(p["requires_preparation"] for p in products)
    assert any(p["unit_type"] for p in products)
    for product in products:
        Decimal(product["price"])
        assert set(product) >= {"sku", "institution", "price", "tracks_inventory", "requires_preparation"}
    customers = first["customers"]
    assert any(c["blocked_products"] for c in customers)
    assert any(c["daily_max"] for c in customers)
    assert any(c["units"] for c in customers)
    near = [c for c in customers if Decimal(c["balance"]) + Decimal(c["overdraft_limit"]) <= Decimal("1000")]
    assert near, "one customer near the overdraft limit"


@pytest.mark.django_db
def test_seeded_keys_balances_and_stock_are_real(tmp_path):
    data = _seed(tmp_path, "demo.json")
    for terminal in data["terminals"]:
        found = terminal_by_key(terminal["key"])
        assert found is not None
        assert found.code == terminal["code"]
    for customer in data["customers"]:
        row = Customer.objects.get(code=customer["code"], institution__code=customer["institution"])
        assert row.balance == Decimal(customer["balance"])
    for product in data["products"]:
        for node_code, quantity in product["stock"].items():
            assert NodeStock.objects.get(product__sku=product["sku"], node__code=node_code).quantity == Decimal(
                quantity
            )
    terminal_level = [n["code"] for n in data["nodes"] if n["numbering_level"] == "terminal"]
    assert InvoiceResolution.objects.filter(level="terminal", terminal__node__code__in=terminal_level).exists()


@pytest.mark.django_db
def test_seed_demo_refuses_without_debug_unless_told(tmp_path, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", "--output", str(tmp_path / "x.json"))
