"""Drive N terminals at once (one thread and one ``httpx.Client`` each), then check that
the server ends up where the terminals' own bookkeeping says it should."""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import httpx

from simulator.bookkeeping import BalanceBook, CustomerView
from simulator.client import ApiRefused, Chaos, Offline, PosClient, Unreachable
from simulator.progress import ProgressBar
from simulator.summary import Discrepancy, Summary, decimal_text
from simulator.terminal import MAX_BATCH, MEAN_GAP_SECONDS, Clock, Outage, Terminal
from simulator.wire import ZERO

SELLING_KINDS = ("pos", "kiosk")
OUTAGE_START_SHARE = 0.3  # the outage begins about a third into the morning


class OptionError(ValueError):
    """Options that cannot be run (unknown terminal, bad fraction...)."""


class SimulationAborted(RuntimeError):
    """The back office could not be read before the first sale (wrong URL, key, no API)."""


@dataclass
class Options:
    url: str = "http://127.0.0.1:8000"
    demo_file: str = "demo.json"
    terminals: str | None = None
    sales: int = 20
    outage_seconds: float = 0.0
    outage: str = "all"
    outage_start: float | None = None
    speed: float = 10.0
    seed: int = 2026
    chaos: bool = False
    json: bool = False
    timeout: float = 10.0
    batch_size: int = MAX_BATCH
    settle_seconds: float = 30.0
    readback: int = 200
    progress: bool = True
    record: str | None = None  # JSON Lines file: one line per sale the terminals made


@dataclass(frozen=True)
class TerminalSpec:
    code: str
    node: str
    kind: str
    key: str
    institution: str


def terminals_select(demo: dict[str, Any], selection: str | None) -> list[TerminalSpec]:
    """``None``: every pos/kiosk terminal; ``"3"``: the first three; ``"A,B"``: those codes."""
    institution_of = {node["code"]: node.get("institution", "") for node in demo.get("nodes", [])}
    specs = [
        TerminalSpec(t["code"], t["node"], t["kind"], t["key"], institution_of.get(t["node"], ""))
        for t in demo.get("terminals", [])
    ]
    selling = [spec for spec in specs if spec.kind in SELLING_KINDS]
    if not selection:
        return selling
    if selection.strip().isdigit():
        count = int(selection)
        if count < 1:
            raise OptionError("--terminals debe ser al menos 1")
        return selling[:count]
    by_code = {spec.code: spec for spec in specs}
    chosen = []
    for code in (c.strip() for c in selection.split(",") if c.strip()):
        if code not in by_code:
            raise OptionError(f"terminal desconocido: {code}")
        if by_code[code].kind not in SELLING_KINDS:
            raise OptionError(f"{code} es de tipo {by_code[code].kind}: solo cajas y kioscos venden")
        chosen.append(by_code[code])
    return chosen


def outage_codes(selection: str, codes: list[str], rng: random.Random) -> frozenset[str]:
    """``all``, a fraction (``0.5``: half of the terminals, chosen by the seed), or codes."""
    text = (selection or "all").strip()
    if text == "all":
        return frozenset(codes)
    try:
        fraction = float(text)
    except ValueError:
        wanted = {c.strip() for c in text.split(",") if c.strip()}
        unknown = wanted - set(codes)
        if unknown:
            raise OptionError(f"--outage nombra terminales que no se simulan: {', '.join(sorted(unknown))}") from None
        return frozenset(wanted)
    if not 0 <= fraction <= 1:
        raise OptionError("--outage como fracción va de 0 a 1")
    count = round(len(codes) * fraction)
    if fraction > 0:
        count = max(count, 1)
    return frozenset(rng.sample(codes, count))


@dataclass
class Expectation:
    """What the server should show once every stored sale is reconciled."""

    stock: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    units: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def apply(self, terminals: list[Terminal]) -> None:
        for terminal in terminals:
            for sale in terminal.stored_sales():
                for line in sale.lines:
                    key = (terminal.node, line.sku)
                    if key in self.stock:
                        self.stock[key] -= line.quantity
                if sale.customer and sale.customer in self.balances:
                    self.balances[sale.customer] -= sale.paygo_amount
                for unit_type, used in sale.units_used().items():
                    key = (sale.customer or "", unit_type)
                    self.units[key] = self.units.get(key, ZERO) - used

    def negative_stock(self) -> list[tuple[str, str]]:
        # Stock only goes down during a run, so a negative end means it went negative.
        return sorted(key for key, quantity in self.stock.items() if quantity < 0)


def discrepancies_find(
    expected: Expectation,
    *,
    stock: dict[tuple[str, str], Decimal | None],
    customers: dict[str, CustomerView],
) -> list[Discrepancy]:
    found = []
    for (node, sku), quantity in sorted(expected.stock.items()):
        actual = stock.get((node, sku))
        if actual is None or Decimal(actual) != quantity:
            found.append(Discrepancy("stock", f"{node}/{sku}", decimal_text(quantity), decimal_text(actual)))
    for code, balance in sorted(expected.balances.items()):
        view = customers.get(code)
        if view is None or view.balance != balance:
            found.append(Discrepancy("balance", code, decimal_text(balance), decimal_text(view and view.balance)))
    for (code, unit_type), held in sorted(expected.units.items()):
        view = customers.get(code)
        actual = view.units.get(unit_type, ZERO) if view else None
        if actual is None or actual != held:
            found.append(Discrepancy("units", f"{code}/{unit_type}", decimal_text(held), decimal_text(actual)))
    return found


class Simulation:
    def __init__(
        self,
        options: Options,
        *,
        transport_factory: Callable[[], httpx.BaseTransport | None] = lambda: None,
        clock: Clock | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.options = options
        self.transport_factory = transport_factory
        self.clock = clock or Clock()
        self.stderr = stderr if stderr is not None else sys.stderr

    def _client(self, spec: TerminalSpec, *, chaos: bool, salt: str) -> PosClient:
        return PosClient(
            base_url=self.options.url,
            key=spec.key,
            timeout=self.options.timeout,
            transport=self.transport_factory(),
            chaos=Chaos() if chaos else None,
            rng=random.Random(f"{self.options.seed}:{spec.code}:{salt}"),
            sleep=self.clock.sleep,
        )

    def run(self, demo: dict[str, Any]) -> Summary:
        options = self.options
        started = time.monotonic()
        specs = terminals_select(demo, options.terminals)
        if not specs:
            raise OptionError("no hay terminales que simular")
        rng = random.Random(options.seed)
        down = outage_codes(options.outage, [s.code for s in specs], rng) if options.outage_seconds > 0 else frozenset()

        # One probe per node (a selected terminal's key) reads the state before and after.
        probes: dict[str, tuple[TerminalSpec, PosClient]] = {}
        for spec in specs:
            probes.setdefault(spec.node, (spec, self._client(spec, chaos=False, salt="probe")))
        expected = Expectation()
        try:
            initial_customers = self._snapshot(probes, expected)
        except (ApiRefused, Unreachable, Offline) as exc:
            raise SimulationAborted(f"no se pudo leer el estado inicial en {options.url}: {exc}") from exc

        progress = ProgressBar(len(specs) * options.sales, stream=self.stderr, enabled=options.progress)
        terminals = [
            Terminal(
                code=spec.code,
                kind=spec.kind,
                node=spec.node,
                client=self._client(spec, chaos=options.chaos, salt="transport"),
                rng=random.Random(f"{options.seed}:{spec.code}"),
                clock=self.clock,
                speed=options.speed,
                chaos_rng=random.Random(f"{options.seed}:{spec.code}:chaos") if options.chaos else None,
                batch_size=options.batch_size,
                on_attempt=progress.advance,
            )
            for spec in specs
        ]
        summary = Summary(outage_terminals=sorted(down))
        # The morning (and the outage clock) starts once every register has opened: a
        # slow first answer must not let the outage pass while the registers still boot.
        self._threads_run(terminals, self._terminal_boot, summary)
        begin = self.clock.monotonic()
        outage_start = options.outage_start
        if outage_start is None:
            outage_start = OUTAGE_START_SHARE * options.sales * MEAN_GAP_SECONDS / max(options.speed, 1e-6)
        outage = Outage(begin + outage_start, begin + outage_start + options.outage_seconds, down)
        for terminal in terminals:
            terminal.outage = outage
        self._threads_run(terminals, self._terminal_run, summary)
        progress.close("conciliando con el servidor")

        for terminal in terminals:
            summary.add_terminal(terminal.code, terminal.stats, terminal.records.values())
            summary.retries += terminal.client.stats.retries
            summary.chaos_timeouts += terminal.client.stats.chaos_timeouts
        expected.apply(terminals)
        summary.predicted_negative_stock = expected.negative_stock()
        self._settle(summary, expected, probes, terminals, initial_customers, specs)
        for terminal in terminals:
            terminal.client.close()
        for _, client in probes.values():
            client.close()
        summary.elapsed_seconds = time.monotonic() - started
        return summary

    @staticmethod
    def _threads_run(terminals: list[Terminal], target, summary: Summary) -> None:
        threads = [
            threading.Thread(target=target, args=(terminal, summary), name=terminal.code, daemon=True)
            for terminal in terminals
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @staticmethod
    def _terminal_boot(terminal: Terminal, summary: Summary) -> None:
        try:
            terminal.boot_when_online()
        except Exception as exc:  # the register sells nothing; the others still run
            terminal.failed = True
            summary.errors.append(f"{terminal.code}: {type(exc).__name__}: {exc}")

    def _terminal_run(self, terminal: Terminal, summary: Summary) -> None:
        if terminal.failed:
            return
        try:
            terminal.run(self.options.sales)
        except Exception as exc:  # one broken terminal must not hide the others' results
            summary.errors.append(f"{terminal.code}: {type(exc).__name__}: {exc}")

    def _snapshot(self, probes, expected: Expectation) -> dict[str, dict[str, CustomerView]]:
        """Read stock and balances before anything is sold: the starting point of the books."""
        customers_by_institution: dict[str, dict[str, CustomerView]] = {}
        for node, (spec, client) in probes.items():
            for row in client.catalog():
                if row.get("tracks_inventory") and row.get("stock") is not None:
                    expected.stock[(node, row["sku"])] = Decimal(str(row["stock"]))
            if spec.institution not in customers_by_institution:
                customers_by_institution[spec.institution] = self._balances(client)
        for customers in customers_by_institution.values():
            for code, view in customers.items():
                expected.balances[code] = view.balance
                for unit_type, held in view.units.items():
                    expected.units[(code, unit_type)] = held
        return customers_by_institution

    @staticmethod
    def _balances(client: PosClient) -> dict[str, CustomerView]:
        book = BalanceBook()
        for index, page in enumerate(client.balances_pages(None)):
            book.apply_page(page, first_page=index == 0)
        return book.customers

    def _server_state(self, probes) -> tuple[dict[tuple[str, str], Decimal | None], dict[str, CustomerView]]:
        stock: dict[tuple[str, str], Decimal | None] = {}
        customers: dict[str, CustomerView] = {}
        seen_institutions = set()
        for node, (spec, client) in probes.items():
            for row in client.catalog():
                stock[(node, row["sku"])] = Decimal(str(row["stock"])) if row.get("stock") is not None else None
            if spec.institution not in seen_institutions:
                seen_institutions.add(spec.institution)
                customers.update(self._balances(client))
        return stock, customers

    def _settle(self, summary, expected, probes, terminals, initial_customers, specs) -> None:
        """Wait (bounded) for reconciliation, then compare books with the server."""
        deadline = time.monotonic() + self.options.settle_seconds
        found: list[Discrepancy] = []
        customers: dict[str, CustomerView] = {}
        while True:
            try:
                stock, customers = self._server_state(probes)
                found = discrepancies_find(expected, stock=stock, customers=customers)
            except (Offline, Unreachable, ApiRefused) as exc:
                found = [Discrepancy("server", "estado final", "legible", str(exc))]
            if not found or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        summary.discrepancies = found

        # Each terminal's own view, kept by the delta feed, must equal a fresh snapshot.
        institution_of = {spec.code: spec.institution for spec in specs}
        for terminal in terminals:
            try:
                terminal.balances_pull(full=False)
            except (Offline, Unreachable, ApiRefused) as exc:
                summary.errors.append(f"{terminal.code}: balances: {exc}")
                continue
            codes = set(initial_customers.get(institution_of[terminal.code], {}))
            for code in sorted(codes):
                mine, server = terminal.book.get(code), customers.get(code)
                if server is not None and (mine is None or mine.balance != server.balance):
                    summary.discrepancies.append(
                        Discrepancy(
                            "feed",
                            f"{terminal.code}/{code}",
                            decimal_text(server.balance),
                            decimal_text(mine and mine.balance),
                        )
                    )
        self._readback(summary, terminals, deadline)

    def _readback(self, summary: Summary, terminals: list[Terminal], deadline: float) -> None:
        """Read stored sales back (a sample, offline ones first) for their final flags."""
        stored = [(terminal, record) for terminal in terminals for record in terminal.records.values() if record.stored]
        stored.sort(key=lambda pair: not pair[1].sale.offline)
        sample = stored if self.options.readback < 0 else stored[: self.options.readback]
        flags: Counter = Counter()
        for terminal, record in sample:
            body = None
            while True:
                try:
                    answer = terminal.client.sale_get(record.sale.id)
                except (Offline, Unreachable) as exc:
                    summary.errors.append(f"{terminal.code}: lectura de venta: {exc}")
                    break
                if answer.status == 404:
                    summary.readback_missing += 1
                    break
                if answer.status >= 400:
                    summary.errors.append(f"{terminal.code}: lectura de venta: {answer.error.code}")
                    break
                body = answer.body if isinstance(answer.body, dict) else {}
                if body.get("reconciled", True) or time.monotonic() >= deadline:
                    break
                time.sleep(0.3)
            if body is None:
                continue
            summary.readback_sampled += 1
            if not body.get("reconciled", True):
                summary.readback_unreconciled += 1
            flags.update(body.get("flags") or [])
        summary.flags_readback = flags


def demo_load(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"no existe el archivo de la demo: {path} (créelo con seed_demo --output)") from None


def run(options: Options, *, stdout: TextIO | None = None, stderr: TextIO | None = None, **kwargs: Any) -> Summary:
    """Run the simulation and print the summary (``--json``: one JSON object, last line)."""
    stdout = stdout if stdout is not None else sys.stdout
    summary = Simulation(options, stderr=stderr, **kwargs).run(demo_load(options.demo_file))
    if options.record:
        with Path(options.record).open("w", encoding="utf-8") as record:
            for entry in summary.sale_log:
                record.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
    if options.json:
        stdout.write(summary.to_json_line() + "\n")
    else:
        stdout.write(summary.render_text() + "\n")
    stdout.flush()
    return summary


__all__ = ["OptionError", "Options", "Simulation", "SimulationAborted", "run"]
