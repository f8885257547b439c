"""Realistic cafeteria baskets: what a customer at a Colombian school or company cafeteria
takes to the register, and how they pay for it.

A basket holds 1–5 different products, mostly one of each (two empanadas, three pandebonos
now and then, one lunch). Identified customers pay with payGO (split with cash when the
balance falls short), anonymous ones with cash or card, and a lunch is paid with a lunch
unit when the customer holds one and units work (online only).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from simulator.bookkeeping import CustomerView
from simulator.capabilities import OfflineCapabilities, Product, paygo_usable, product_sellable, units_usable
from simulator.wire import ZERO, Line, Payment

LINE_COUNTS = (1, 2, 3, 4, 5)
LINE_COUNT_WEIGHTS = (45, 30, 15, 7, 3)
QUANTITIES = (1, 2, 3)
QUANTITY_WEIGHTS = (75, 18, 7)
# A snack bought by the handful is cheap; a lunch or a sandwich comes one per person.
SINGLE_ITEM_PRICE = Decimal("9000")
CUSTOMER_SHARE = 0.7  # most buyers at a closed-loop cafeteria carry a payGO account
CARD_SHARE = 0.3  # of anonymous buyers
HOPEFUL_PAYGO_SHARE = 0.3  # online, a short balance is sometimes tried anyway (and refused)


@dataclass(frozen=True)
class Basket:
    customer: str | None
    lines: tuple[Line, ...]
    payments: tuple[Payment, ...]
    known_balance: Decimal | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), ZERO)


@dataclass(frozen=True)
class NotSold:
    reason: str


def customer_pick(rng: random.Random, customers: Sequence[CustomerView]) -> CustomerView | None:
    active = [c for c in customers if c.active]
    if not active or rng.random() >= CUSTOMER_SHARE:
        return None
    return rng.choice(active)


def _quantity(rng: random.Random, product: Product) -> Decimal:
    if product.unit_type or product.price >= SINGLE_ITEM_PRICE:
        return Decimal(1)
    return Decimal(rng.choices(QUANTITIES, QUANTITY_WEIGHTS)[0])


def _products_pick(rng: random.Random, products: Sequence[Product], count: int) -> list[Product]:
    return rng.sample(list(products), min(count, len(products)))


def basket_plan(
    rng: random.Random,
    *,
    products: Sequence[Product],
    customer: CustomerView | None,
    online: bool,
    caps: OfflineCapabilities,
) -> Basket | NotSold:
    """Choose what is bought and how it is paid, obeying the offline capabilities.

    Offline: closed-inventory products only if the node allows them, no consumable units,
    payGO only if the node allows selling against the last known balance and only up to
    that balance's ``available`` (the rest in cash). Blocks and daily maximums are not
    checked by the terminal (online the server enforces them; offline nobody does).
    """
    sellable = [p for p in products if product_sellable(product=p, online=online, caps=caps)]
    if not sellable:
        return NotSold("closed_inventory_offline" if products else "empty_catalog")
    count = rng.choices(LINE_COUNTS, LINE_COUNT_WEIGHTS)[0]
    chosen = _products_pick(rng, sellable, count)

    units_left = dict(customer.units) if customer and units_usable(online=online, caps=caps) else {}
    lines: list[Line] = []
    units_paid: dict[str, Decimal] = {}
    for product in chosen:
        quantity = _quantity(rng, product)
        unit_type = product.unit_type
        if unit_type and units_left.get(unit_type, ZERO) >= quantity:
            units_left[unit_type] -= quantity
            units_paid[unit_type] = units_paid.get(unit_type, ZERO) + quantity
            lines.append(Line(product.sku, quantity, ZERO))
        else:
            lines.append(Line(product.sku, quantity, product.price))

    total = sum((line.total for line in lines), ZERO)
    payments = [Payment("units", amount, unit_type) for unit_type, amount in sorted(units_paid.items())]
    use_paygo = customer is not None and paygo_usable(online=online, caps=caps)
    known_balance = None
    if total > 0 and use_paygo:
        assert customer is not None
        available = customer.available
        if available >= total or (online and rng.random() < HOPEFUL_PAYGO_SHARE):
            payments.append(Payment("paygo", total))
        elif available > 0:
            payments += [Payment("paygo", available), Payment("cash", total - available)]
        else:
            payments.append(Payment("cash", total))
        if not online:
            known_balance = customer.balance
    elif total > 0:
        payments.append(Payment("card" if rng.random() < CARD_SHARE else "cash", total))

    # A customer is named when the sale touches their account; otherwise it is anonymous.
    touches_account = any(p.method in {"paygo", "units"} for p in payments)
    return Basket(
        customer=customer.code if customer and touches_account else None,
        lines=tuple(lines),
        payments=tuple(payments),
        known_balance=known_balance if touches_account else None,
    )
