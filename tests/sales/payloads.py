"""Sale objects as terminals send them (contract §4), for the sales tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

BATCHES_URL = "/api/v1/pos/sales/batches"
ONLINE_URL = "/api/v1/pos/sales"


def sale_url(sale_id: str) -> str:
    return f"/api/v1/pos/sales/{sale_id}"


_seq = iter(range(1, 10**9))


def sale(**overrides: Any) -> dict[str, Any]:
    """A valid offline sale at N1: two empanadas paid with Ana's payGO balance."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "seq": next(_seq),
        "occurred_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "offline": True,
        "customer": "C-000123",
        "lines": [{"sku": "SKU-EMPANADA", "quantity": "2", "unit_price": "3500.00"}],
        "payments": [{"method": "paygo", "amount": "7000.00"}],
        "known_balance": "12000.00",
    }
    body.update(overrides)
    return body


def cash_sale(sku: str = "SKU-JUGO", price: str = "3000.00", quantity: str = "1", **overrides: Any) -> dict[str, Any]:
    from decimal import Decimal

    total = (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.01"))
    return sale(
        customer=None,
        lines=[{"sku": sku, "quantity": quantity, "unit_price": price}],
        payments=[{"method": "cash", "amount": str(total)}],
        known_balance=None,
        **overrides,
    )


def batch(*sales: dict[str, Any], batch_id: str | None = None) -> dict[str, Any]:
    return {"batch_id": batch_id or str(uuid.uuid4()), "sales": list(sales)}


def assert_error_shape(response, status: int | None = None, code: str | None = None) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    if status is not None:
        assert response.status_code == status, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
