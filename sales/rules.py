"""The business rules of a sale, written once (DESIGN principle 1).

Each rule looks at the facts around one sale and reports a :class:`Breach`. Online, a
breach rejects the sale with ``Breach.code`` (``422``, every breach listed). Offline, the
sale happened and is accepted; the same breach becomes the flag ``Breach.flag`` for
back-office review. Facts a caller does not know yet (``None``) skip the rule that needs
them: ingest knows blocks, kiosk and units at once; stock, balances and daily totals are
known in time order only at reconciliation, which evaluates those rules then.

This module is pure: no database, no clock. Callers gather the facts (with the locks
they need) and act on the result.

The facts are immutable named tuples rather than frozen dataclasses: ingest builds one
per line, payment, customer and sale (about 3,000 for a batch of 500 sales), and a
frozen dataclass costs several times a tuple to construct.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal("0")
MONEY_METHODS = frozenset({"paygo", "cash", "card"})


class LineFacts(NamedTuple):
    index: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    tracks_inventory: bool
    unit_type: str = ""
    catalog_price: Decimal | None = None
    # Node stock of this product just before this sale (in time order); None = unknown.
    stock_before: Decimal | None = None


class PaymentFacts(NamedTuple):
    index: int
    method: str
    amount: Decimal
    unit_type: str = ""


class CustomerFacts(NamedTuple):
    blocked_skus: frozenset[str] = frozenset()
    overdraft_limit: Decimal = ZERO
    daily_max: Decimal | None = None
    # Balance just before this sale, in time order; None = unknown.
    balance_before: Decimal | None = None
    # Consumption of the customer's Bogotá day before this sale; None = unknown.
    spent_today_before: Decimal | None = None
    # Units held just before this sale, by unit type; None = unknown.
    units_before: Mapping[str, int] | None = None


class SaleFacts(NamedTuple):
    offline: bool
    terminal_kind: str
    allow_offline_closed_inventory_sales: bool
    use_last_balance_offline: bool
    lines: tuple[LineFacts, ...]
    payments: tuple[PaymentFacts, ...]
    customer: CustomerFacts | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.quantity * line.unit_price for line in self.lines), ZERO)

    @property
    def paygo_amount(self) -> Decimal:
        return sum((p.amount for p in self.payments if p.method == "paygo"), ZERO)


@dataclass(frozen=True)
class Breach:
    """A rule the sale breaks: ``code`` rejects it online, ``flag`` marks it offline.

    ``code`` is None for facts that only matter offline (e.g. a kiosk selling offline);
    ``flag`` is None for rules with nothing to record offline.
    """

    code: str | None
    flag: str | None
    field: str
    message: str
    detail: dict = field(default_factory=dict)


def _stock(facts: SaleFacts) -> list[Breach]:
    breaches = []
    running: dict[str, Decimal] = {}
    for line in facts.lines:
        if not line.tracks_inventory or line.stock_before is None:
            continue
        before = running.get(line.sku, line.stock_before)
        after = before - line.quantity
        running[line.sku] = after
        if after < 0:
            breaches.append(
                Breach(
                    code="insufficient_stock",
                    flag="negative_stock",
                    field=f"lines[{line.index}].quantity",
                    message=f"Existencias insuficientes de {line.sku}: hay {before}, se venden {line.quantity}.",
                    detail={"sku": line.sku, "before": str(before), "after": str(after)},
                )
            )
    return breaches


def _closed_inventory_offline(facts: SaleFacts) -> list[Breach]:
    if not facts.offline or facts.allow_offline_closed_inventory_sales:
        return []
    return [
        Breach(
            code=None,
            flag="offline_not_allowed",
            field=f"lines[{line.index}].sku",
            message=f"{line.sku} es de inventario cerrado y el nodo no permite venderlo sin conexión.",
            detail={"sku": line.sku},
        )
        for line in facts.lines
        if line.tracks_inventory
    ]


def _blocks(facts: SaleFacts) -> list[Breach]:
    if facts.customer is None:
        return []
    return [
        Breach(
            code="product_blocked",
            flag="blocked_product",
            field=f"lines[{line.index}].sku",
            message=f"El producto {line.sku} está bloqueado para este cliente.",
            detail={"sku": line.sku},
        )
        for line in facts.lines
        if line.sku in facts.customer.blocked_skus
    ]


def _daily_max(facts: SaleFacts) -> list[Breach]:
    customer = facts.customer
    if customer is None or customer.daily_max is None or customer.spent_today_before is None:
        return []
    after = customer.spent_today_before + facts.total
    if after <= customer.daily_max:
        return []
    return [
        Breach(
            code="daily_max_exceeded",
            flag="daily_max_exceeded",
            field="customer",
            message=(
                f"Supera el consumo máximo diario de {customer.daily_max}: "
                f"lleva {customer.spent_today_before} y esta venta suma {facts.total}."
            ),
            detail={
                "daily_max": str(customer.daily_max),
                "before": str(customer.spent_today_before),
                "after": str(after),
            },
        )
    ]


def _balance(facts: SaleFacts) -> list[Breach]:
    customer = facts.customer
    amount = facts.paygo_amount
    breaches = []
    if facts.offline and amount > 0 and not facts.use_last_balance_offline:
        breaches.append(
            Breach(
                code=None,
                flag="balance_unverified",
                field="payments",
                message="Venta payGO sin conexión en un nodo que no usa el último balance: saldo no verificado.",
            )
        )
    if customer is None or customer.balance_before is None or amount <= 0:
        return breaches
    after = customer.balance_before - amount
    if after < -customer.overdraft_limit:
        index = next(p.index for p in facts.payments if p.method == "paygo")
        breaches.append(
            Breach(
                code="insufficient_balance",
                flag="overdraft_exceeded",
                field=f"payments[{index}].amount",
                message=(
                    f"Saldo insuficiente: disponible {customer.balance_before + customer.overdraft_limit}, "
                    f"se cobran {amount}."
                ),
                detail={"before": str(customer.balance_before), "after": str(after)},
            )
        )
    return breaches


def _units(facts: SaleFacts) -> list[Breach]:
    units_payments = [p for p in facts.payments if p.method == "units"]
    if not units_payments:
        return []
    breaches = []
    if facts.offline:
        breaches.append(
            Breach(
                code=None,
                flag="units_offline",
                field=f"payments[{units_payments[0].index}]",
                message="Pago con unidades consumibles sin conexión: no se pudo verificar.",
            )
        )
    customer = facts.customer
    if customer is None or customer.units_before is None:
        return breaches
    wanted: dict[str, Decimal] = defaultdict(Decimal)
    first_index: dict[str, int] = {}
    for payment in units_payments:
        wanted[payment.unit_type] += payment.amount
        first_index.setdefault(payment.unit_type, payment.index)
    for unit_type, amount in wanted.items():
        held = customer.units_before.get(unit_type, 0)
        if held - amount < 0:
            breaches.append(
                Breach(
                    code="insufficient_units",
                    flag="units_offline" if facts.offline else None,
                    field=f"payments[{first_index[unit_type]}].amount",
                    message=f"Unidades insuficientes de {unit_type}: tiene {held}, se usan {amount}.",
                    detail={"unit_type": unit_type, "before": held, "after": str(held - amount)},
                )
            )
    return breaches


def _self_service(facts: SaleFacts) -> list[Breach]:
    if facts.offline and facts.terminal_kind == "kiosk":
        return [
            Breach(
                code=None,
                flag="self_service_offline",
                field="offline",
                message="El autoservicio no funciona sin conexión y esta venta se hizo sin conexión.",
            )
        ]
    return []


def _price(facts: SaleFacts) -> list[Breach]:
    return [
        Breach(
            code=None,
            flag="price_mismatch",
            field=f"lines[{line.index}].unit_price",
            message=f"Precio de {line.sku} distinto al del catálogo ({line.catalog_price}): {line.unit_price}.",
            detail={"sku": line.sku, "catalog_price": str(line.catalog_price), "unit_price": str(line.unit_price)},
        )
        for line in facts.lines
        if line.catalog_price is not None
        # Lines paid with consumable units carry 0.00 by contract: not a mismatch.
        and not (line.unit_type and line.unit_price == 0)
        and line.unit_price != line.catalog_price
    ]


RULES = (_stock, _closed_inventory_offline, _blocks, _daily_max, _balance, _units, _self_service, _price)

# The rules that read what came before the sale in time (stock before, spent today
# before, balance before): reconciliation judges sales again with these alone, in time
# of sale, when earlier sales arrive late. The others read only the sale and its node.
TIME_ORDERED_RULES = (_stock, _daily_max, _balance)


def sale_breaches(facts: SaleFacts, *, rules: tuple = RULES) -> list[Breach]:
    """Every rule (of ``rules``) the sale breaks with the facts known, in a stable order."""
    return [breach for rule in rules for breach in rule(facts)]


def online_rejections(breaches: list[Breach]) -> list[dict[str, str]]:
    """The errors that reject an online sale (``422``), each with code, field and message."""
    return [{"code": b.code, "field": b.field, "message": b.message} for b in breaches if b.code]


def offline_flags(breaches: list[Breach]) -> dict[str, dict]:
    """Flag code -> detail for an accepted sale (the first breach of each flag wins)."""
    flags: dict[str, dict] = {}
    for breach in breaches:
        if breach.flag and breach.flag not in flags:
            flags[breach.flag] = {"field": breach.field, "message": breach.message, **breach.detail}
    return flags
