"""Reconciliation asks only the rules that read what came before a sale
(``sales.rules.TIME_ORDERED_RULES``): for every sale, that gives exactly the
reconciliation flags that asking every rule gives."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sales.reconcile_flags import RECONCILE_FLAG_CODES, time_ordered_flags
from sales.rules import RULES, CustomerFacts, LineFacts, PaymentFacts, SaleFacts, offline_flags, sale_breaches

SKUS = ["SKU-A", "SKU-B", "SKU-C"]
amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("50000"), places=2)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("20"), places=3)

lines = st.lists(
    st.builds(
        LineFacts,
        index=st.integers(0, 9),
        sku=st.sampled_from(SKUS),
        quantity=quantities,
        unit_price=amounts,
        tracks_inventory=st.booleans(),
        unit_type=st.sampled_from(["", "ALMUERZO"]),
        catalog_price=st.none() | amounts,
        stock_before=st.none() | st.decimals(min_value=Decimal("-10"), max_value=Decimal("30"), places=3),
    ),
    max_size=5,
).map(tuple)
payments = st.lists(
    st.builds(
        PaymentFacts,
        index=st.integers(0, 4),
        method=st.sampled_from(["paygo", "cash", "card", "units"]),
        amount=amounts,
        unit_type=st.sampled_from(["", "ALMUERZO"]),
    ),
    max_size=3,
).map(tuple)
customers = st.none() | st.builds(
    CustomerFacts,
    blocked_skus=st.frozensets(st.sampled_from(SKUS)),
    overdraft_limit=amounts,
    daily_max=st.none() | amounts,
    balance_before=st.none() | st.decimals(min_value=Decimal("-50000"), max_value=Decimal("50000"), places=2),
    spent_today_before=st.none() | amounts,
    units_before=st.none() | st.just({"ALMUERZO": 1}),
)


@settings(max_examples=300, deadline=None)
@given(lines=lines, payments=payments, customer=customers)
def test_the_time_ordered_rules_give_every_reconciliation_flag_that_all_rules_give(lines, payments, customer):
    facts = SaleFacts(
        offline=False,
        terminal_kind="pos",
        allow_offline_closed_inventory_sales=True,
        use_last_balance_offline=True,
        lines=lines,
        payments=payments,
        customer=customer,
    )
    every_rule = {
        code: detail
        for code, detail in offline_flags(sale_breaches(facts, rules=RULES)).items()
        if code in RECONCILE_FLAG_CODES
    }
    assert time_ordered_flags(lines=lines, payments=payments, customer=customer) == every_rule
