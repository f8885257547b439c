"""A demo file shaped like ``seed_demo --output`` (docs/pos-sync-api.md), without the server,
and a fake clock so terminals run instantly."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from simulator.wire import BOGOTA


def demo_data() -> dict:
    nodes = [
        ("N1", "COL-SANJOSE", True, "terminal"),
        ("N2", "COL-SANJOSE", False, "node"),
        ("N3", "EMP-ANDINA", True, "institution"),
    ]
    terminals = [
        ("N1-CAJA-01", "N1", "pos"),
        ("N1-CAJA-02", "N1", "pos"),
        ("N1-KIOSCO-01", "N1", "kiosk"),
        ("N1-COCINA-01", "N1", "kitchen"),
        ("N2-CAJA-01", "N2", "pos"),
        ("N3-CAJA-01", "N3", "pos"),
    ]
    products = [
        ("COL-SANJOSE", "SKU-EMPANADA", "3500.00", True, None, {"N1": "40", "N2": "15"}),
        ("COL-SANJOSE", "SKU-GASEOSA", "2500.00", True, None, {"N1": "24", "N2": "12"}),
        ("COL-SANJOSE", "SKU-SANDWICH", "6500.00", True, None, {"N1": "4", "N2": "2"}),
        ("COL-SANJOSE", "SKU-ALMUERZO", "12000.00", False, "ALMUERZO", {}),
        ("COL-SANJOSE", "SKU-JUGO", "3000.00", False, None, {}),
        ("EMP-ANDINA", "AND-CAFE", "1800.00", False, None, {}),
        ("EMP-ANDINA", "AND-PAN", "1500.00", True, None, {"N3": "30"}),
    ]
    customers = [
        ("C-000123", "COL-SANJOSE", "12000.00", "5000.00", "20000.00", ["SKU-GASEOSA"], {"ALMUERZO": 12}),
        ("C-000200", "COL-SANJOSE", "-4500.00", "5000.00", None, [], {}),
        ("C-000201", "COL-SANJOSE", "8000.00", "0.00", "10000.00", [], {"ALMUERZO": 5}),
        ("C-000001", "COL-SANJOSE", "30000.00", "0.00", None, [], {}),
        ("C-000002", "COL-SANJOSE", "15000.00", "10000.00", None, [], {}),
        ("E-000100", "EMP-ANDINA", "40000.00", "20000.00", "30000.00", [], {"ALMUERZO": 20}),
        ("E-000001", "EMP-ANDINA", "10000.00", "0.00", None, [], {}),
    ]
    return {
        "admin": {"username": "admin", "password": "x"},
        "finance": {"username": "finanzas", "password": "y"},
        "institutions": [{"code": "COL-SANJOSE", "name": "Colegio"}, {"code": "EMP-ANDINA", "name": "Andina"}],
        "nodes": [
            {
                "code": code,
                "institution": inst,
                "allow_offline_closed_inventory_sales": flags,
                "use_last_balance_offline": flags,
                "numbering_level": level,
            }
            for code, inst, flags, level in nodes
        ],
        "terminals": [
            {"code": code, "node": node, "kind": kind, "key": f"key-{code}"} for code, node, kind in terminals
        ],
        "products": [
            {
                "sku": sku,
                "institution": inst,
                "name": sku,
                "price": price,
                "tracks_inventory": tracks,
                "requires_preparation": False,
                "unit_type": unit_type,
                "stock": stock,
            }
            for inst, sku, price, tracks, unit_type, stock in products
        ],
        "customers": [
            {
                "code": code,
                "institution": inst,
                "name": code,
                "balance": balance,
                "overdraft_limit": overdraft,
                "daily_max": daily_max,
                "blocked_products": blocked,
                "units": units,
            }
            for code, inst, balance, overdraft, daily_max, blocked, units in customers
        ],
    }


class FakeClock:
    """Monotonic time that only moves when someone sleeps; thread-safe enough for tests
    (each sleep adds to one shared counter)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.start = datetime(2026, 11, 28, 7, 0, tzinfo=BOGOTA)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t - 1000.0)

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


@pytest.fixture
def demo_dict() -> dict:
    return demo_data()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
