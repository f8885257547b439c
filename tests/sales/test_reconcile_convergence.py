"""Order-free convergence (DESIGN principle 5), as a property: offline sales of several
terminals of one node, delivered in any order, in any chunks, with duplicates, and
reconciled after each chunk — with stock receipts entered after the fact in between —
end exactly as if delivered once in time order."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Customer
from inventory.models import NegativeStockEvent, NodeStock, Product
from inventory.services import stock_movement_record
from nodes.models import Node
from sales.models import Comanda, SaleFlag, SequenceGap
from sales.reconcile import sales_reconcile
from tests.sales.stored_sales import SaleSpec, stored_sales_create

TERMINALS = ["N1-CAJA-01", "N1-CAJA-02", "N1-KIOSCO-01"]
SKUS = ["SKU-SANDWICH", "SKU-SANDWICH", "SKU-GASEOSA", "SKU-AREPA"]  # sandwiches: 4 in stock
CUSTOMERS = [None, "C-000123", "C-000200", "C-000201"]  # daily max, near overdraft, both

sale_drafts = st.lists(
    st.tuples(
        st.integers(0, len(TERMINALS) - 1),
        st.integers(0, 40),  # minute: ties across terminals on purpose
        st.integers(0, len(SKUS) - 1),
        st.integers(1, 3),
        st.integers(0, len(CUSTOMERS) - 1),
        st.booleans(),  # a second line of gaseosa
    ),
    min_size=1,
    max_size=18,
)


receipt_drafts = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 4)), max_size=2)  # (minute, quantity)


def _specs(drafts, base_time) -> list[SaleSpec]:
    prices = dict(Product.objects.filter(sku__in=SKUS).values_list("sku", "price"))
    seqs = dict.fromkeys(TERMINALS, 0)
    specs = []
    # A terminal numbers its sales in the order it makes them (time, then draw order).
    for index, (t, minute, s, quantity, c, extra) in sorted(enumerate(drafts), key=lambda d: (d[1][1], d[0])):
        terminal = TERMINALS[t]
        seqs[terminal] += 1
        lines = [(SKUS[s], quantity)]
        if extra:
            lines.append(("SKU-GASEOSA", 1))
        total = sum((prices[sku] * q for sku, q in lines), Decimal("0"))
        customer = CUSTOMERS[c]
        specs.append(
            SaleSpec(
                id=uuid.UUID(int=index + 1),
                terminal=terminal,
                seq=seqs[terminal],
                occurred_at=base_time + timedelta(minutes=minute),
                customer=customer,
                lines=tuple(lines),
                payments=(("paygo", total),) if customer else None,
            )
        )
    return specs


def _outcome() -> dict:
    events = {
        (e.node_id, e.product_id, e.starting_sale_id): (
            frozenset(e.sales.values_list("pk", flat=True)),
            e.quantity_before,
            e.quantity_after,
            e.lowest_quantity,
            e.ended_at,
        )
        for e in NegativeStockEvent.objects.all()
    }
    return {
        "stock": {(n, p): q for n, p, q in NodeStock.objects.values_list("node_id", "product_id", "quantity")},
        "balances": dict(Customer.objects.values_list("code", "balance")),
        "flags": set(SaleFlag.objects.values_list("sale_id", "code")),
        "events": events,
        "comandas": {
            (sale, late, repr(items)) for sale, late, items in Comanda.objects.values_list("sale_id", "late", "items")
        },
        "gaps": set(SequenceGap.objects.values_list("terminal_id", "first_missing", "last_missing")),
    }


def _in_rollback(action) -> dict:
    with transaction.atomic():
        action()
        outcome = _outcome()
        transaction.set_rollback(True)
    return outcome


@pytest.mark.django_db
@settings(
    max_examples=int(os.environ.get("PAYGO_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drafts=sale_drafts, receipts=receipt_drafts, data=st.data())
def test_any_delivery_order_converges_to_time_order(demo, base_time, drafts, receipts, data):
    specs = _specs(drafts, base_time)
    order = data.draw(st.permutations(range(len(specs))), label="arrival order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(specs) - 1)), max_size=4), label="chunk cuts"))
    chunks = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    duplicates = data.draw(
        st.lists(st.tuples(st.integers(0, len(chunks) - 1), st.integers(0, len(specs) - 1)), max_size=5),
        label="duplicates (chunk, sale)",
    )
    for chunk_index, sale_index in duplicates:
        chunks[chunk_index] = [*chunks[chunk_index], sale_index]

    # Receipts of sandwiches entered by staff at some point of the delivery, each dated
    # at a minute of the day (inside an episode or not).
    receipts_after = [data.draw(st.integers(0, len(chunks)), label="receipt entered after chunk") for _ in receipts]

    def receive(minute, quantity):
        stock_movement_record(
            node=Node.objects.get(code="N1"),
            product=Product.objects.get(sku="SKU-SANDWICH"),
            quantity=Decimal(quantity),
            occurred_at=base_time + timedelta(minutes=minute, seconds=30),
        )

    def once_in_time_order():
        for minute, quantity in receipts:
            receive(minute, quantity)
        stored_sales_create(sorted(specs, key=lambda s: (s.occurred_at, s.terminal, s.seq)))
        sales_reconcile()

    def as_delivered():
        for position, chunk in enumerate([*chunks, []]):
            for (minute, quantity), after in zip(receipts, receipts_after, strict=True):
                if after == position:
                    receive(minute, quantity)
            if chunk:
                stored_sales_create([specs[i] for i in chunk])
                sales_reconcile(sale_ids=[specs[i].id for i in chunk])

    expected = _in_rollback(once_in_time_order)
    actual = _in_rollback(as_delivered)
    assert actual == expected
