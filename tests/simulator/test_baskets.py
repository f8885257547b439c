"""Baskets obey the offline capabilities and always add up as the contract requires."""

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from simulator.baskets import Basket, NotSold, basket_plan
from simulator.bookkeeping import CustomerView
from simulator.capabilities import OfflineCapabilities, Product

PRODUCTS = [
    Product("SKU-EMPANADA", "Empanada", Decimal("3500"), True, None),
    Product("SKU-GASEOSA", "Gaseosa", Decimal("2500"), True, None),
    Product("SKU-ALMUERZO", "Almuerzo", Decimal("12000"), False, "ALMUERZO"),
    Product("SKU-JUGO", "Jugo", Decimal("3000"), False, None),
    Product("SKU-FRUTA", "Fruta", Decimal("1500"), False, None),
    Product("SKU-SANDWICH", "Sándwich", Decimal("9500"), True, None),
]
TRACKED = {p.sku for p in PRODUCTS if p.tracks_inventory}
LUNCH_LOVER = CustomerView("C-1", Decimal("20000"), Decimal("5000"), units={"ALMUERZO": Decimal(3)})
ALMOST_BROKE = CustomerView("C-2", Decimal("-4500"), Decimal("5000"))

caps_strategy = st.builds(
    OfflineCapabilities,
    closed_inventory_sales=st.booleans(),
    paygo_balance_sales=st.booleans(),
    invoice_numbering=st.sampled_from(["local", "deferred"]),
)


def _adds_up(basket: Basket) -> None:
    money_lines = sum((line.total for line in basket.lines), Decimal(0))
    money_paid = sum((p.amount for p in basket.payments if p.method != "units"), Decimal(0))
    assert money_paid == money_lines
    unit_lines = sum((line.quantity for line in basket.lines if line.unit_price == 0), Decimal(0))
    assert sum((p.amount for p in basket.payments if p.method == "units"), Decimal(0)) == unit_lines
    assert all(p.amount > 0 for p in basket.payments)
    assert 1 <= len(basket.lines) <= 5
    assert len({line.sku for line in basket.lines}) == len(basket.lines)
    if any(p.method in {"paygo", "units"} for p in basket.payments):
        assert basket.customer is not None


@given(seed=st.integers(0, 10**6), caps=caps_strategy, customer=st.sampled_from([None, LUNCH_LOVER, ALMOST_BROKE]))
def test_offline_baskets_respect_the_capability_table(seed, caps, customer):
    basket = basket_plan(random.Random(seed), products=PRODUCTS, customer=customer, online=False, caps=caps)
    assert isinstance(basket, Basket)
    _adds_up(basket)
    methods = {p.method for p in basket.payments}
    assert "units" not in methods  # consumable units do not work offline
    assert all(line.unit_price > 0 for line in basket.lines)
    if not caps.closed_inventory_sales:
        assert not {line.sku for line in basket.lines} & TRACKED
    if "paygo" in methods:
        assert caps.paygo_balance_sales
        # against the last known balance: never more than what was available
        assert basket.known_balance == customer.balance
        assert sum(p.amount for p in basket.payments if p.method == "paygo") <= customer.available
    if customer is None:
        assert methods <= {"cash", "card"}


@given(seed=st.integers(0, 10**6), customer=st.sampled_from([None, LUNCH_LOVER, ALMOST_BROKE]))
def test_online_baskets_add_up_and_use_units_when_held(seed, customer):
    basket = basket_plan(
        random.Random(seed), products=PRODUCTS, customer=customer, online=True, caps=OfflineCapabilities()
    )
    _adds_up(basket)
    assert basket.known_balance is None
    lunch = [line for line in basket.lines if line.sku == "SKU-ALMUERZO"]
    if lunch and customer is LUNCH_LOVER:
        assert lunch[0].unit_price == 0
        assert {"method": "units", "amount": "1", "unit_type": "ALMUERZO"} in [p.to_wire() for p in basket.payments]


def test_only_closed_inventory_left_offline_without_the_flag_sells_nothing():
    tracked_only = [p for p in PRODUCTS if p.tracks_inventory]
    outcome = basket_plan(
        random.Random(1), products=tracked_only, customer=None, online=False, caps=OfflineCapabilities()
    )
    assert outcome == NotSold("closed_inventory_offline")


def test_a_short_offline_balance_is_split_with_cash():
    caps = OfflineCapabilities(paygo_balance_sales=True, closed_inventory_sales=True)
    for seed in range(200):
        basket = basket_plan(random.Random(seed), products=PRODUCTS, customer=ALMOST_BROKE, online=False, caps=caps)
        paygo = sum((p.amount for p in basket.payments if p.method == "paygo"), Decimal(0))
        assert paygo <= Decimal("500")
        if basket.total > Decimal("500"):
            assert any(p.method == "cash" for p in basket.payments)
