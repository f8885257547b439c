"""The terminal's view of balances: full snapshots replace, deltas overwrite, own sales debit."""

from datetime import datetime
from decimal import Decimal

from simulator.bookkeeping import BalanceBook
from simulator.wire import BOGOTA, Line, Payment, Sale


def _row(code, balance, overdraft="5000.00", units=None):
    return {"code": code, "balance": balance, "overdraft_limit": overdraft, "units": units or {}}


def _sale(customer, payments):
    return Sale(
        "id-1",
        1,
        datetime(2026, 11, 28, 12, tzinfo=BOGOTA),
        True,
        customer,
        (Line("SKU-EMPANADA", Decimal(2), Decimal("3500")),),
        tuple(payments),
    )


def test_full_snapshot_replaces_and_delta_overwrites():
    book = BalanceBook()
    book.apply_page(
        {"full": True, "cursor": "c1", "customers": [_row("A", "100.00"), _row("B", "5.00")]}, first_page=True
    )
    book.apply_page({"full": False, "cursor": "c2", "customers": [_row("B", "7.00")]}, first_page=True)
    assert book.balances() == {"A": Decimal("100.00"), "B": Decimal("7.00")}
    assert book.cursor == "c2"
    book.apply_page({"full": True, "cursor": "c3", "customers": [_row("C", "1.00")]}, first_page=True)
    assert book.balances() == {"C": Decimal("1.00")}  # an unservable cursor gave a full snapshot


def test_paged_full_snapshot_keeps_every_page():
    book = BalanceBook()
    book.apply_page({"full": True, "cursor": "p1", "has_more": True, "customers": [_row("A", "1.00")]}, first_page=True)
    book.apply_page({"full": True, "cursor": "p2", "customers": [_row("B", "2.00")]}, first_page=False)
    assert set(book.balances()) == {"A", "B"}


def test_overdraft_derived_from_available_when_absent():
    book = BalanceBook()
    book.apply_page(
        {"full": True, "customers": [{"code": "A", "balance": "10.00", "available": "60.00"}]}, first_page=True
    )
    assert book.get("A").available == Decimal("60.00")


def test_own_sale_updates_the_last_known_balance_and_units():
    book = BalanceBook()
    book.apply_page({"full": True, "customers": [_row("A", "12000.00", units={"ALMUERZO": 2})]}, first_page=True)
    book.debit(_sale("A", [Payment("paygo", Decimal("7000")), Payment("units", Decimal(1), "ALMUERZO")]))
    view = book.get("A")
    assert view.balance == Decimal("5000.00")
    assert view.available == Decimal("10000.00")
    assert view.units == {"ALMUERZO": Decimal(1)}
    book.debit(_sale(None, [Payment("cash", Decimal("7000"))]))  # anonymous: nothing to update
    assert book.get("A").balance == Decimal("5000.00")
