"""What a terminal may do without Internet: the capability table of DESIGN.md, as the
server states it in ``GET /api/v1/pos/config`` (``offline`` and ``invoicing``).

Pure decisions, no I/O, so each row of the table is unit-tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.wire import Invoice

SELLING_KINDS = frozenset({"pos", "kiosk"})


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal
    tracks_inventory: bool
    unit_type: str | None
    requires_preparation: bool = False
    active: bool = True

    @classmethod
    def from_catalog(cls, row: dict[str, Any]) -> Product:
        return cls(
            sku=row["sku"],
            name=row.get("name", row["sku"]),
            price=Decimal(str(row["price"])),
            tracks_inventory=bool(row.get("tracks_inventory")),
            unit_type=row.get("unit_type") or None,
            requires_preparation=bool(row.get("requires_preparation")),
            active=row.get("active", True) is not False,
        )


@dataclass(frozen=True)
class OfflineCapabilities:
    """The ``offline`` block of the terminal's config."""

    closed_inventory_sales: bool = False
    paygo_balance_sales: bool = False
    self_service: bool = False
    consumable_units: bool = False
    invoice_numbering: str = "deferred"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OfflineCapabilities:
        offline = config.get("offline") or {}
        return cls(
            closed_inventory_sales=bool(offline.get("closed_inventory_sales")),
            paygo_balance_sales=bool(offline.get("paygo_balance_sales")),
            self_service=bool(offline.get("self_service")),
            consumable_units=bool(offline.get("consumable_units")),
            invoice_numbering=str(offline.get("invoice_numbering") or "deferred"),
        )


def terminal_sells(*, kind: str, online: bool, caps: OfflineCapabilities) -> bool:
    """Registers sell online and offline; a kiosk (self-service) only online unless the
    server ever says self-service works offline; kitchen clients never sell."""
    if kind not in SELLING_KINDS:
        return False
    if online:
        return True
    return kind == "pos" or caps.self_service


def product_sellable(*, product: Product, online: bool, caps: OfflineCapabilities) -> bool:
    """Online the server checks stock; offline a closed-inventory product is sold only when
    the node allows closed-inventory sales without checking stock."""
    if not product.active:
        return False
    return online or not product.tracks_inventory or caps.closed_inventory_sales


def units_usable(*, online: bool, caps: OfflineCapabilities) -> bool:
    return online or caps.consumable_units


def paygo_usable(*, online: bool, caps: OfflineCapabilities) -> bool:
    """Online the server checks the live balance; offline only against the last known one,
    when the node allows it."""
    return online or caps.paygo_balance_sales


class InvoiceNumbering:
    """Consecutive invoice numbers a terminal-level register hands out itself.

    At terminal level the register owns its resolution's range and numbers every sale,
    online and offline (offline only when ``invoice_numbering == "local"``). At node or
    institution level the server numbers: the terminal sends no invoice. A number is
    never used outside ``[range_from, range_to]``; an exhausted range leaves the sale
    without invoice (the server's ``invoice_range_exhausted`` decides online).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        invoicing = config.get("invoicing") or {}
        self.level = str(invoicing.get("numbering_level") or "")
        self.local_offline = (config.get("offline") or {}).get("invoice_numbering") == "local"
        resolution = invoicing.get("resolution") if self.level == "terminal" else None
        self.resolution = resolution or None
        if self.resolution:
            self.prefix = str(self.resolution.get("prefix") or "")
            self.number = str(self.resolution["number"])
            self.range_from = int(self.resolution["range_from"])
            self.range_to = int(self.resolution["range_to"])
            self.next_number = max(int(self.resolution.get("next_number") or self.range_from), self.range_from)

    @property
    def terminal_level(self) -> bool:
        return self.resolution is not None

    def take(self, *, online: bool) -> Invoice | None:
        if not self.terminal_level or (not online and not self.local_offline):
            return None
        if self.next_number > self.range_to:
            return None
        invoice = Invoice(prefix=self.prefix, number=self.next_number, resolution=self.number)
        self.next_number += 1
        return invoice

    def give_back(self, invoice: Invoice | None) -> None:
        """A sale refused online did not use its number: the next sale reuses it."""
        if invoice is not None and self.terminal_level and invoice.number == self.next_number - 1:
            self.next_number -= 1
