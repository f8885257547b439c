"""The shapes of the POS sync API as a terminal writes and reads them (docs/pos-sync-api.md).

Money is a decimal string with two places, quantities a decimal string, times RFC 3339
with an offset. Nothing here knows about HTTP or the server's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

# Colombia has kept UTC-5 without daylight saving since 1993, so a fixed offset is exact
# and spares the client a tzdata dependency.
BOGOTA = timezone(timedelta(hours=-5), "America/Bogota")
ZERO = Decimal("0")
MONEY_METHODS = frozenset({"paygo", "cash", "card"})


def money(amount: Decimal) -> str:
    return f"{Decimal(amount):.2f}"


def quantity_text(quantity: Decimal | int) -> str:
    return format(Decimal(quantity).normalize(), "f")


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("occurred_at must be an aware datetime")
    return moment.astimezone(BOGOTA).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price

    def to_wire(self) -> dict[str, str]:
        return {"sku": self.sku, "quantity": quantity_text(self.quantity), "unit_price": money(self.unit_price)}


@dataclass(frozen=True)
class Payment:
    method: str
    amount: Decimal
    unit_type: str | None = None

    def to_wire(self) -> dict[str, str]:
        if self.method == "units":
            return {"method": "units", "amount": quantity_text(self.amount), "unit_type": self.unit_type or ""}
        return {"method": self.method, "amount": money(self.amount)}


@dataclass(frozen=True)
class Invoice:
    prefix: str
    number: int
    resolution: str

    def to_wire(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "number": self.number, "resolution": self.resolution}


@dataclass(frozen=True)
class Sale:
    """One sale exactly as the terminal sends it; re-sending it sends the same content."""

    id: str
    seq: int
    occurred_at: datetime
    offline: bool
    customer: str | None
    lines: tuple[Line, ...]
    payments: tuple[Payment, ...]
    invoice: Invoice | None = None
    known_balance: Decimal | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), ZERO)

    @property
    def paygo_amount(self) -> Decimal:
        return sum((p.amount for p in self.payments if p.method == "paygo"), ZERO)

    def units_used(self) -> dict[str, Decimal]:
        used: dict[str, Decimal] = {}
        for payment in self.payments:
            if payment.method == "units" and payment.unit_type:
                used[payment.unit_type] = used.get(payment.unit_type, ZERO) + payment.amount
        return used

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "occurred_at": rfc3339(self.occurred_at),
            "offline": self.offline,
            "customer": self.customer,
            "lines": [line.to_wire() for line in self.lines],
            "payments": [payment.to_wire() for payment in self.payments],
            "invoice": self.invoice.to_wire() if self.invoice else None,
        }
        if self.known_balance is not None:
            body["known_balance"] = money(self.known_balance)
        return body


@dataclass(frozen=True)
class ApiError:
    """The contract's error shape: ``{"error": {"code", "message", "details"}}``."""

    status: int
    code: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_codes(self) -> list[str]:
        """Every rule a refused sale breaks (``details.errors[].code``), else the error code."""
        errors = self.details.get("errors") if isinstance(self.details, dict) else None
        codes = [e.get("code") for e in errors or [] if isinstance(e, dict) and e.get("code")]
        return codes or [self.code]

    @classmethod
    def from_body(cls, status: int, body: Any) -> ApiError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(status=status, code=f"http_{status}", message="respuesta sin el formato de error del contrato")
        details = error.get("details")
        return cls(
            status=status,
            code=str(error.get("code") or f"http_{status}"),
            message=str(error.get("message") or ""),
            details=details if isinstance(details, dict) else {},
        )
