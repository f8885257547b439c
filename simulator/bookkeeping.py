"""What a terminal believes about its customers: the last balances it pulled from the feed,
updated locally by its own sales (DESIGN: "sells against the last known balance and
updates it locally; after sync every register refreshes all balances")."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from simulator.wire import ZERO, Sale


@dataclass(frozen=True)
class CustomerView:
    code: str
    balance: Decimal
    overdraft_limit: Decimal
    active: bool = True
    daily_max: Decimal | None = None
    blocked_products: frozenset[str] = frozenset()
    units: dict[str, Decimal] = field(default_factory=dict)

    @property
    def available(self) -> Decimal:
        return self.balance + self.overdraft_limit

    @classmethod
    def from_feed(cls, row: dict[str, Any]) -> CustomerView:
        balance = Decimal(str(row["balance"]))
        if row.get("overdraft_limit") is not None:
            overdraft = Decimal(str(row["overdraft_limit"]))
        elif row.get("available") is not None:
            overdraft = Decimal(str(row["available"])) - balance
        else:
            overdraft = ZERO
        daily_max = row.get("daily_max")
        return cls(
            code=row["code"],
            balance=balance,
            overdraft_limit=overdraft,
            active=row.get("active", True) is not False,
            daily_max=Decimal(str(daily_max)) if daily_max is not None else None,
            blocked_products=frozenset(row.get("blocked_products") or ()),
            units={k: Decimal(str(v)) for k, v in (row.get("units") or {}).items()},
        )


class BalanceBook:
    """Customer balances as one terminal knows them.

    ``apply_page`` follows the feed: a full snapshot replaces everything (its first page
    clears the book), a delta page overwrites only the customers it lists. ``debit``
    applies one of the terminal's own sales so the next sale sees it before the feed does.
    """

    def __init__(self) -> None:
        self.customers: dict[str, CustomerView] = {}
        self.cursor: str | None = None

    def apply_page(self, page: dict[str, Any], *, first_page: bool) -> None:
        if page.get("full") and first_page:
            self.customers = {}
        for row in page.get("customers") or []:
            view = CustomerView.from_feed(row)
            self.customers[view.code] = view
        self.cursor = page.get("cursor") or self.cursor

    def get(self, code: str) -> CustomerView | None:
        return self.customers.get(code)

    def debit(self, sale: Sale) -> None:
        if not sale.customer or sale.customer not in self.customers:
            return
        view = self.customers[sale.customer]
        units = dict(view.units)
        for unit_type, used in sale.units_used().items():
            units[unit_type] = units.get(unit_type, ZERO) - used
        self.customers[sale.customer] = replace(view, balance=view.balance - sale.paygo_amount, units=units)

    def balances(self) -> dict[str, Decimal]:
        return {code: view.balance for code, view in self.customers.items()}
