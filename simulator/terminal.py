"""One register or kiosk, driven by a seeded ``random.Random``.

It reads its config and catalog, keeps the balance feed (full, then deltas every
``balance_sync_interval_seconds`` scaled by ``speed``), sells baskets to customers, posts
each sale online or queues it during an outage, and on reconnect uploads the queue in
batches and refreshes every balance.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulator.baskets import Basket, NotSold, basket_plan, customer_pick
from simulator.bookkeeping import BalanceBook
from simulator.capabilities import InvoiceNumbering, OfflineCapabilities, Product, terminal_sells
from simulator.client import ApiRefused, Offline, PosClient, Unreachable
from simulator.wire import BOGOTA, Sale, rfc3339

MAX_BATCH = 500  # the contract's limit per batch
MEAN_GAP_SECONDS = 20.0  # simulated seconds between two customers at one register
MIN_GAP_SECONDS, MAX_GAP_SECONDS = 2.0, 120.0
HEARTBEAT_SECONDS = 60.0  # simulated
DEFAULT_SYNC_SECONDS = 300
RECONNECT_ROUNDS = 8


class Clock:
    """Real time; tests pass a fake with the same three methods."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(BOGOTA)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Outage:
    """The connection of ``codes`` is down between ``start`` and ``end`` (monotonic seconds)."""

    start: float = 0.0
    end: float = 0.0
    codes: frozenset[str] = frozenset()

    def is_online(self, code: str, at: float) -> bool:
        return not (code in self.codes and self.start <= at < self.end)


@dataclass
class SaleRecord:
    """A sale the terminal made and what the server said about it."""

    sale: Sale
    outcome: str  # online_stored | refused | unconfirmed | queued | stored | rejected
    codes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    accepted_answers: int = 0
    duplicate_answers: int = 0

    @property
    def stored(self) -> bool:
        return self.outcome in {"online_stored", "stored"}


@dataclass
class TerminalStats:
    attempts: int = 0
    online: int = 0
    offline: int = 0
    not_sold: Counter = field(default_factory=Counter)
    refused_online: Counter = field(default_factory=Counter)
    online_duplicates: int = 0
    online_errors: Counter = field(default_factory=Counter)
    batches: int = 0
    resent_batches: int = 0
    uploaded: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_code: Counter = field(default_factory=Counter)
    upload_errors: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    balance_pulls: Counter = field(default_factory=Counter)  # full / delta
    heartbeats: int = 0


def batches_plan(
    sales: list[Sale], *, batch_size: int = MAX_BATCH, rng: random.Random | None = None
) -> list[list[Sale]]:
    """Split the queue into batches of at most ``batch_size`` (never more than 500).

    In ``seq`` order normally; with an ``rng`` (chaos) the queue is shuffled and cut into
    batches of random sizes, to prove the server does not depend on arrival order.
    """
    size = max(1, min(batch_size, MAX_BATCH))
    ordered = sorted(sales, key=lambda s: s.seq)
    if rng is None:
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(ordered)
    batches = []
    while ordered:
        # at most half of what is left, so even a small queue arrives in several pieces
        cut = rng.randint(1, min(size, max(1, (len(ordered) + 1) // 2)))
        batches.append(ordered[:cut])
        ordered = ordered[cut:]
    return batches


class Terminal:
    def __init__(
        self,
        *,
        code: str,
        kind: str,
        node: str,
        client: PosClient,
        rng: random.Random,
        outage: Outage | None = None,
        clock: Clock | None = None,
        speed: float = 1.0,
        chaos_rng: random.Random | None = None,
        batch_size: int = MAX_BATCH,
        id_factory: Callable[[], str] = lambda: str(uuid.uuid4()),
        on_attempt: Callable[[], None] = lambda: None,
    ) -> None:
        self.code, self.kind, self.node = code, kind, node
        self.client = client
        self.rng = rng
        self.outage = outage or Outage()
        self.clock = clock or Clock()
        self.speed = max(speed, 1e-6)
        self.chaos_rng = chaos_rng  # set only with --chaos
        self.batch_size = batch_size
        self.new_id = id_factory
        self.on_attempt = on_attempt

        self.config: dict[str, Any] = {}
        self.caps = OfflineCapabilities()
        self.numbering = InvoiceNumbering({})
        self.products: list[Product] = []
        self.book = BalanceBook()
        self.seq = 0
        self.records: dict[str, SaleRecord] = {}
        self.queue: list[Sale] = []  # offline sales not yet answered by the server
        self.unconfirmed: list[Sale] = []  # online posts whose answer never came
        self.stats = TerminalStats()
        self.sync_interval = DEFAULT_SYNC_SECONDS / self.speed
        self.last_pull = 0.0
        self.last_heartbeat = float("-inf")
        self.online_since = self.clock.now()
        self.was_offline = False
        self.heartbeat_supported = True
        self.booted = False
        self.failed = False  # could not open (set by the runner)
        client.is_online = self.is_online

    # -- state -----------------------------------------------------------------------------

    def is_online(self) -> bool:
        return self.outage.is_online(self.code, self.clock.monotonic())

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.unconfirmed)

    def boot(self) -> None:
        """Read config, catalog and the full balance snapshot (the terminal starts online)."""
        self.config = self.client.config()
        self.kind = (self.config.get("terminal") or {}).get("kind", self.kind)
        self.caps = OfflineCapabilities.from_config(self.config)
        self.numbering = InvoiceNumbering(self.config)
        interval = (self.config.get("node") or {}).get("balance_sync_interval_seconds") or DEFAULT_SYNC_SECONDS
        self.sync_interval = float(interval) / self.speed
        self.products = [Product.from_catalog(row) for row in self.client.catalog()]
        self.balances_pull(full=True)
        self.booted = True

    def boot_when_online(self) -> None:
        """A register cannot open without its config: wait for the connection (bounded)."""
        if self.booted:
            return
        for round_ in range(1, RECONNECT_ROUNDS + 1):
            while not self.is_online():
                self.clock.sleep(0.05)
            try:
                self.boot()
                return
            except (Offline, Unreachable):
                if round_ == RECONNECT_ROUNDS:
                    raise
                self.clock.sleep(0.5)

    # -- the day ---------------------------------------------------------------------------

    def run(self, sales: int) -> None:
        self.boot_when_online()
        for _ in range(sales):
            self.clock.sleep(self._gap())
            self.tick()
            self.sell_one()
        self.finish()

    def _gap(self) -> float:
        simulated = self.rng.expovariate(1 / MEAN_GAP_SECONDS)
        return min(max(simulated, MIN_GAP_SECONDS), MAX_GAP_SECONDS) / self.speed

    def tick(self) -> None:
        """Background duties between customers: reconnect, balance deltas, heartbeat."""
        if not self.is_online():
            self.was_offline = True
            return
        try:
            if self.was_offline or self.pending:
                self.reconnect()
            elif self.clock.monotonic() - self.last_pull >= self.sync_interval:
                self.balances_pull(full=False)
            if self.clock.monotonic() - self.last_heartbeat >= HEARTBEAT_SECONDS / self.speed:
                self.heartbeat()
        except (Offline, Unreachable, ApiRefused) as exc:
            self.stats.online_errors[_failure_code(exc)] += 1

    def finish(self) -> None:
        """After the last customer: wait for the connection, upload everything, refresh."""
        for _ in range(RECONNECT_ROUNDS):
            while not self.is_online():
                self.clock.sleep(0.05)
            try:
                self.reconnect()
                self.heartbeat()
            except (Offline, Unreachable, ApiRefused) as exc:
                self.stats.online_errors[_failure_code(exc)] += 1
                self.clock.sleep(0.5)
                continue
            if not self.pending:
                return

    def reconnect(self) -> None:
        """Upload what was sold offline (and re-post unanswered online sales), then pull
        every balance again: DESIGN's "after sync every register refreshes all balances"."""
        if self.was_offline:
            self.online_since = self.clock.now()
        for sale in list(self.unconfirmed):
            self._post_online(sale, retrying=True)
        self.upload()
        self.balances_pull(full=True)
        self.was_offline = False

    # -- selling ---------------------------------------------------------------------------

    def sell_one(self) -> SaleRecord | NotSold:
        self.stats.attempts += 1
        try:
            return self._sell()
        finally:
            self.on_attempt()

    def _sell(self) -> SaleRecord | NotSold:
        online = self.is_online()
        if not terminal_sells(kind=self.kind, online=online, caps=self.caps):
            outcome = NotSold("self_service_offline" if self.kind == "kiosk" else "not_a_register")
        else:
            customer = customer_pick(self.rng, list(self.book.customers.values()))
            outcome = basket_plan(self.rng, products=self.products, customer=customer, online=online, caps=self.caps)
        if isinstance(outcome, NotSold):
            self.stats.not_sold[outcome.reason] += 1
            return outcome
        sale = self._sale_from(outcome, online=online)
        if online:
            return self._post_online(sale)
        self.stats.offline += 1
        self.was_offline = True
        self.book.debit(sale)  # sells against the last known balance and updates it locally
        record = self.records[sale.id] = SaleRecord(sale, "queued")
        self.queue.append(sale)
        return record

    def _sale_from(self, basket: Basket, *, online: bool) -> Sale:
        self.seq += 1
        return Sale(
            id=self.new_id(),
            seq=self.seq,
            occurred_at=self.clock.now(),
            offline=not online,
            customer=basket.customer,
            lines=basket.lines,
            payments=basket.payments,
            invoice=self.numbering.take(online=online),
            known_balance=basket.known_balance,
        )

    def _post_online(self, sale: Sale, *, retrying: bool = False) -> SaleRecord:
        if not retrying:
            self.stats.online += 1
        try:
            answer = self.client.sale_post(sale.to_wire())
        except (Offline, Unreachable) as exc:
            # The answer never came: the sale may be stored. Same content again later.
            if not retrying:
                self.unconfirmed.append(sale)
                self.stats.online_errors[_failure_code(exc)] += 1
            return self.records.setdefault(sale.id, SaleRecord(sale, "unconfirmed"))
        if retrying:
            self.unconfirmed.remove(sale)
        if answer.status in (200, 201):
            if answer.status == 200:
                self.stats.online_duplicates += 1
            flags = list((answer.body or {}).get("flags") or []) if isinstance(answer.body, dict) else []
            self.stats.flags.update(flags)
            self.book.debit(sale)
            record = SaleRecord(sale, "online_stored", flags=flags)
        else:
            error = answer.error
            codes = error.rule_codes
            if answer.status == 422:
                self.stats.refused_online.update(codes)
            else:
                self.stats.online_errors[error.code] += 1
            record = SaleRecord(sale, "refused", codes=codes)
            if not retrying and sale.seq == self.seq:
                # Not a sale after all: its number and seq go to the next one.
                self.numbering.give_back(sale.invoice)
                self.seq -= 1
        self.records[sale.id] = record
        return record

    # -- syncing ---------------------------------------------------------------------------

    def upload(self) -> None:
        """Send the offline queue in batches of ≤500 (chaos: shuffled, split, some twice).

        Each batch is retried by the client on timeouts and 5xx. Sales the server answered
        (accepted, duplicate or rejected) leave the queue; the rest stay for next time.
        """
        if not self.queue:
            return
        for chunk in batches_plan(self.queue, batch_size=self.batch_size, rng=self.chaos_rng):
            batch = {"batch_id": self.new_id(), "sales": [sale.to_wire() for sale in chunk]}
            self._batch_send(batch, chunk)
            resend_rate = self.client.chaos.resend_rate if self.client.chaos else 0.0
            if self.chaos_rng is not None and self.chaos_rng.random() < resend_rate:
                self.stats.resent_batches += 1
                self._batch_send(batch, chunk)

    def _batch_send(self, batch: dict[str, Any], chunk: list[Sale]) -> None:
        answer = self.client.batch_post(batch)
        self.stats.batches += 1
        if answer.status != 200:
            self.stats.upload_errors[answer.error.code] += 1
            return
        self.stats.uploaded += len(chunk)
        answered = set()
        for result in (answer.body or {}).get("results") or []:
            record = self.records.get(result.get("id"))
            if record is None:
                continue
            answered.add(record.sale.id)
            status = result.get("status")
            if status == "accepted":
                self.stats.accepted += 1
                record.accepted_answers += 1
                record.outcome = "stored"
                record.flags = list(result.get("flags") or [])
                self.stats.flags.update(record.flags)
            elif status == "duplicate":
                self.stats.duplicates += 1
                record.duplicate_answers += 1
                if record.outcome != "rejected":
                    record.outcome = "stored"
            else:
                codes = [e.get("code", "rejected") for e in result.get("errors") or []] or ["rejected"]
                self.stats.rejected += 1
                self.stats.rejected_by_code.update(codes)
                if record.outcome != "stored":
                    record.outcome, record.codes = "rejected", codes
        self.queue = [sale for sale in self.queue if sale.id not in answered]

    def balances_pull(self, *, full: bool) -> None:
        cursor = None if full else self.book.cursor
        for index, page in enumerate(self.client.balances_pages(cursor)):
            self.book.apply_page(page, first_page=index == 0)
        self.last_pull = self.clock.monotonic()
        self.stats.balance_pulls["full" if full else "delta"] += 1

    def heartbeat(self) -> None:
        if not self.heartbeat_supported:
            return
        age = max(0, int(self.clock.monotonic() - self.last_pull))
        answer = self.client.heartbeat(
            {
                "online_since": rfc3339(self.online_since),
                "pending_sales": self.pending,
                "last_seq": self.seq,
                "balances_cursor_age_seconds": age,
            }
        )
        self.last_heartbeat = self.clock.monotonic()
        if answer.status in (404, 405):
            self.heartbeat_supported = False  # optional for terminals; not served here
        elif answer.status < 300:
            self.stats.heartbeats += 1

    def stored_sales(self) -> Iterable[Sale]:
        return (record.sale for record in self.records.values() if record.stored)


def _failure_code(exc: Exception) -> str:
    if isinstance(exc, Offline):
        return "offline"
    if isinstance(exc, Unreachable):
        return f"unreachable_{exc.last.split(':')[0]}"
    if isinstance(exc, ApiRefused):
        return exc.error.code
    return type(exc).__name__
