"""The offline capability table, row by row, as the terminal decides it."""

from decimal import Decimal

import pytest

from simulator.capabilities import (
    InvoiceNumbering,
    OfflineCapabilities,
    Product,
    paygo_usable,
    product_sellable,
    terminal_sells,
    units_usable,
)

FLAGS_ON = OfflineCapabilities(closed_inventory_sales=True, paygo_balance_sales=True, invoice_numbering="local")
FLAGS_OFF = OfflineCapabilities()
TRACKED = Product("SKU-EMPANADA", "Empanada", Decimal("3500"), tracks_inventory=True, unit_type=None)
UNTRACKED = Product("SKU-JUGO", "Jugo", Decimal("3000"), tracks_inventory=False, unit_type=None)


@pytest.mark.parametrize(
    ("kind", "online", "caps", "sells"),
    [
        ("pos", True, FLAGS_OFF, True),
        ("pos", False, FLAGS_OFF, True),
        ("pos", False, FLAGS_ON, True),
        ("kiosk", True, FLAGS_OFF, True),
        ("kiosk", False, FLAGS_ON, False),  # self-service does not work offline
        ("kiosk", False, FLAGS_OFF, False),
        ("kitchen", True, FLAGS_ON, False),
    ],
)
def test_which_terminals_sell(kind, online, caps, sells):
    assert terminal_sells(kind=kind, online=online, caps=caps) is sells


def test_closed_inventory_offline_only_with_the_node_flag():
    assert product_sellable(product=TRACKED, online=True, caps=FLAGS_OFF)
    assert not product_sellable(product=TRACKED, online=False, caps=FLAGS_OFF)
    assert product_sellable(product=TRACKED, online=False, caps=FLAGS_ON)
    assert product_sellable(product=UNTRACKED, online=False, caps=FLAGS_OFF)


def test_units_never_offline_and_paygo_offline_only_with_the_flag():
    assert units_usable(online=True, caps=FLAGS_OFF)
    assert not units_usable(online=False, caps=FLAGS_ON)
    assert paygo_usable(online=True, caps=FLAGS_OFF)
    assert not paygo_usable(online=False, caps=FLAGS_OFF)
    assert paygo_usable(online=False, caps=FLAGS_ON)


def test_capabilities_read_from_config():
    caps = OfflineCapabilities.from_config(
        {"offline": {"closed_inventory_sales": True, "paygo_balance_sales": False, "invoice_numbering": "local"}}
    )
    assert caps == OfflineCapabilities(
        closed_inventory_sales=True, paygo_balance_sales=False, invoice_numbering="local"
    )


def _config(level, *, next_number=1042, range_to=5000, local=True):
    invoicing = {"numbering_level": level}
    if level == "terminal":
        invoicing["resolution"] = {
            "number": "18764000001",
            "prefix": "FE",
            "range_from": 1,
            "range_to": range_to,
            "next_number": next_number,
        }
    return {"offline": {"invoice_numbering": "local" if local else "deferred"}, "invoicing": invoicing}


def test_terminal_level_numbers_every_sale_consecutively_from_next_number():
    numbering = InvoiceNumbering(_config("terminal"))
    first, second = numbering.take(online=False), numbering.take(online=True)
    assert (first.prefix, first.number, first.resolution) == ("FE", 1042, "18764000001")
    assert second.number == 1043


@pytest.mark.parametrize("level", ["node", "institution"])
def test_node_and_institution_levels_leave_the_invoice_to_the_server(level):
    numbering = InvoiceNumbering(_config(level, local=False))
    assert numbering.take(online=False) is None
    assert numbering.take(online=True) is None


def test_no_local_number_offline_when_the_server_says_deferred():
    assert InvoiceNumbering(_config("terminal", local=False)).take(online=False) is None


def test_local_numbers_stay_within_the_range():
    numbering = InvoiceNumbering(_config("terminal", next_number=4999, range_to=5000))
    assert [numbering.take(online=False).number for _ in range(2)] == [4999, 5000]
    assert numbering.take(online=False) is None  # exhausted: never outside the range


def test_a_refused_sale_gives_its_number_back():
    numbering = InvoiceNumbering(_config("terminal"))
    invoice = numbering.take(online=True)
    numbering.give_back(invoice)
    assert numbering.take(online=True).number == invoice.number
