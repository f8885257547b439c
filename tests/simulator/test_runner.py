"""The runner against the in-memory back office: whole runs, summary, options."""

import io
import json
import random
from collections import Counter
from decimal import Decimal

import pytest

from simulator.cli import options_from, parser_build
from simulator.runner import Expectation, OptionError, Options, Simulation, outage_codes, run, terminals_select
from simulator.summary import Summary
from simulator.terminal import SaleRecord, TerminalStats
from tests.simulator.backoffice_double import BackOfficeDouble


def _simulate(demo, clock, **overrides):
    double = BackOfficeDouble(demo)
    options = Options(
        url="http://backoffice.test", sales=25, speed=1.0, seed=11, settle_seconds=0, progress=True, **overrides
    )
    stderr = io.StringIO()
    summary = Simulation(options, transport_factory=double.transport, clock=clock, stderr=stderr).run(demo)
    return summary, double, stderr.getvalue()


def test_a_morning_with_an_outage_ends_without_discrepancies(demo_dict, fake_clock):
    summary, double, progress = _simulate(
        demo_dict, fake_clock, terminals="N1-CAJA-01", outage_seconds=300, outage_start=100
    )
    assert summary.errors == []
    assert summary.online > 0
    assert summary.offline > 0
    assert summary.accepted == summary.offline  # every offline sale stored once
    assert summary.lost == 0
    assert summary.accepted_twice == 0
    assert summary.stored == len(double.sales)
    assert summary.discrepancies == []
    assert summary.readback_sampled == summary.stored
    assert "25/25 ventas" in progress
    assert progress.startswith("\r[")


def test_several_terminals_with_chaos(demo_dict, fake_clock):
    summary, double, _ = _simulate(
        demo_dict,
        fake_clock,
        terminals="N1-CAJA-01,N1-CAJA-02,N2-CAJA-01,N3-CAJA-01",
        outage_seconds=2000,
        outage_start=200,
        chaos=True,
    )
    assert summary.errors == []
    assert summary.outage_terminals == ["N1-CAJA-01", "N1-CAJA-02", "N2-CAJA-01", "N3-CAJA-01"]
    assert summary.resent_batches > 0
    assert summary.duplicates > 0
    assert summary.accepted + summary.duplicates + summary.rejected == summary.uploaded
    assert summary.stored == len(double.sales)
    assert summary.discrepancies == []
    # the books predicted exactly the pairs the server drove below zero
    negative = sorted((node, sku) for (node, sku), q in double.stock.items() if q < 0)
    assert summary.predicted_negative_stock == negative


def test_discrepancies_are_reported_when_the_server_disagrees(demo_dict, fake_clock):
    double = BackOfficeDouble(demo_dict)
    original = double._store

    def forgetful_store(terminal, sale, flags):  # a server that loses paygo debits
        original(terminal, sale, flags)
        account = double.accounts.get(sale.get("customer") or "")
        if account:
            account.balance += sum(Decimal(p["amount"]) for p in sale["payments"] if p["method"] == "paygo")

    double._store = forgetful_store
    options = Options(url="http://x", terminals="N1-CAJA-01", sales=30, speed=1.0, settle_seconds=0, progress=False)
    summary = Simulation(options, transport_factory=double.transport, clock=fake_clock).run(demo_dict)
    assert summary.discrepancy_count > 0
    assert {d.kind for d in summary.discrepancies} == {"balance"}


def test_json_summary_is_the_last_stdout_line(demo_dict, fake_clock, tmp_path):
    demo_file = tmp_path / "demo.json"
    demo_file.write_text(json.dumps(demo_dict), encoding="utf-8")
    double = BackOfficeDouble(demo_dict)
    out = io.StringIO()
    options = Options(
        url="http://x", demo_file=str(demo_file), terminals="2", sales=5, speed=1.0, json=True, settle_seconds=0
    )
    summary = run(options, stdout=out, stderr=io.StringIO(), transport_factory=double.transport, clock=fake_clock)
    last = out.getvalue().strip().splitlines()[-1]
    parsed = json.loads(last)
    assert parsed["sales"]["attempts"] == 10
    assert parsed["terminals"] == ["N1-CAJA-01", "N1-CAJA-02"]
    assert parsed["discrepancies"]["total"] == summary.discrepancy_count == 0


def test_record_lists_every_sale_made_with_its_outcome(demo_dict, fake_clock, tmp_path):
    demo_file = tmp_path / "demo.json"
    demo_file.write_text(json.dumps(demo_dict), encoding="utf-8")
    record = tmp_path / "sales.jsonl"
    double = BackOfficeDouble(demo_dict)
    options = Options(
        url="http://x",
        demo_file=str(demo_file),
        terminals="N1-CAJA-01",
        sales=25,
        speed=1.0,
        outage_seconds=300,
        outage_start=100,
        settle_seconds=0,
        progress=False,
        record=str(record),
    )
    summary = run(
        options, stdout=io.StringIO(), stderr=io.StringIO(), transport_factory=double.transport, clock=fake_clock
    )

    entries = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert {e["id"] for e in entries if e["stored"]} == set(double.sales)
    assert sum(e["stored"] for e in entries) == summary.stored
    assert any(e["offline"] for e in entries)
    assert {e["terminal"] for e in entries} == {"N1-CAJA-01"}
    assert "sale_log" not in summary.to_dict()


def test_summary_arithmetic_adds_terminals_and_outcomes():
    def stats(**kw):
        return TerminalStats(**kw)

    summary = Summary()
    summary.add_terminal(
        "A",
        stats(attempts=5, online=3, offline=2, accepted=2, uploaded=3, duplicates=1, refused_online=Counter(x=1)),
        [
            SaleRecord(None, "online_stored"),
            SaleRecord(None, "stored", accepted_answers=1, duplicate_answers=1),
            SaleRecord(None, "refused", codes=["x"]),
            SaleRecord(None, "queued"),
        ],
    )
    summary.add_terminal(
        "B",
        stats(attempts=4, online=4, refused_online=Counter(x=1, y=2), flags=Counter(negative_stock=2)),
        [SaleRecord(None, "stored", accepted_answers=2), SaleRecord(None, "unconfirmed")],
    )
    assert (summary.attempts, summary.online, summary.offline) == (9, 7, 2)
    assert summary.refused_online == Counter(x=2, y=2)
    assert summary.refused_total == 4
    assert (summary.stored, summary.lost, summary.accepted_twice) == (3, 2, 1)
    data = summary.to_dict()
    assert data["upload"] == {
        "batches": 0,
        "resent_batches": 0,
        "uploaded": 3,
        "accepted": 2,
        "duplicates": 1,
        "rejected": 0,
        "rejected_by_code": {},
        "errors": {},
        "accepted_twice": 1,
    }
    assert data["flags"]["upload"] == {"negative_stock": 2}
    assert "\n" not in summary.to_json_line()
    assert "Diferencias finales (esperado 0): 0" in summary.render_text()


def test_expected_negative_stock_from_own_bookkeeping():
    expected = Expectation(stock={("N1", "A"): Decimal(-1), ("N1", "B"): Decimal(0), ("N2", "A"): Decimal(-3)})
    assert expected.negative_stock() == [("N1", "A"), ("N2", "A")]


def test_terminal_selection(demo_dict):
    assert [t.code for t in terminals_select(demo_dict, None)] == [
        "N1-CAJA-01",
        "N1-CAJA-02",
        "N1-KIOSCO-01",
        "N2-CAJA-01",
        "N3-CAJA-01",
    ]
    assert [t.code for t in terminals_select(demo_dict, "2")] == ["N1-CAJA-01", "N1-CAJA-02"]
    assert [t.institution for t in terminals_select(demo_dict, "N3-CAJA-01")] == ["EMP-ANDINA"]
    with pytest.raises(OptionError):
        terminals_select(demo_dict, "N1-COCINA-01")
    with pytest.raises(OptionError):
        terminals_select(demo_dict, "NOPE")


def test_outage_selection():
    codes = ["A", "B", "C", "D"]
    assert outage_codes("all", codes, random.Random(1)) == frozenset(codes)
    assert outage_codes("B,C", codes, random.Random(1)) == frozenset({"B", "C"})
    assert len(outage_codes("0.5", codes, random.Random(1))) == 2
    assert len(outage_codes("0.1", codes, random.Random(1))) == 1
    assert outage_codes("0", codes, random.Random(1)) == frozenset()
    with pytest.raises(OptionError):
        outage_codes("Z", codes, random.Random(1))
    with pytest.raises(OptionError):
        outage_codes("1.5", codes, random.Random(1))


def test_option_parsing():
    args = parser_build().parse_args(
        [
            "--demo-file",
            "demo.json",
            "--terminals",
            "N1-CAJA-01,N1-CAJA-02",
            "--sales",
            "60",
            "--outage-seconds",
            "20",
            "--outage",
            "0.5",
            "--speed",
            "20",
            "--seed",
            "3",
            "--chaos",
            "--json",
            "--timeout",
            "2.5",
        ]
    )
    options = options_from(args)
    assert options == Options(
        url="http://127.0.0.1:8000",
        demo_file="demo.json",
        terminals="N1-CAJA-01,N1-CAJA-02",
        sales=60,
        outage_seconds=20.0,
        outage="0.5",
        speed=20.0,
        seed=3,
        chaos=True,
        json=True,
        timeout=2.5,
    )
    assert options_from(parser_build().parse_args(["--record", "out.jsonl"])).record == "out.jsonl"


@pytest.mark.parametrize(
    "bad", [["--sales", "0"], ["--speed", "0"], ["--batch-size", "501"], ["--outage-seconds", "-1"]]
)
def test_bad_options_are_refused(bad, capsys):
    with pytest.raises(SystemExit):
        parser_build().parse_args(bad)


def test_management_command_shares_the_options():
    from django.core.management import load_command_class

    command = load_command_class("sales", "simulate_pos")
    parser = command.create_parser("manage.py", "simulate_pos")
    options = options_from(vars(parser.parse_args(["--sales", "7", "--chaos", "--terminals", "3"])))
    assert (options.sales, options.chaos, options.terminals, options.url) == (7, True, "3", "http://127.0.0.1:8000")


def test_the_client_package_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys, simulator, simulator.__main__, simulator.cli;"
        "bad=[m for m in sys.modules if m.split('.')[0] in {'django','rest_framework','paygo','sales','billing',"
        "'nodes','inventory'}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_an_unreadable_back_office_aborts_with_a_clear_message(demo_dict, fake_clock):
    import httpx

    from simulator import SimulationAborted

    options = Options(url="http://x", terminals="1", sales=1, progress=False)
    not_here = lambda: httpx.MockTransport(lambda r: httpx.Response(404, text="<h1>Not Found</h1>"))  # noqa: E731
    with pytest.raises(SimulationAborted, match="estado inicial"):
        Simulation(options, transport_factory=not_here, clock=fake_clock).run(demo_dict)
