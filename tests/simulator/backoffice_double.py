"""An in-memory back office that answers the POS sync API as docs/pos-sync-api.md says,
behind ``httpx.MockTransport``. It lets the simulator's HTTP behaviour be tested without
the server (which lives on other branches); the live e2e test uses the real one.

Deliberately small: online rules (stock, blocks, balance + overdraft, units) refuse with
422; batches accept every well-formed sale, flag negative stock, and are idempotent by
sale id. Faults are injected with ``faults``: a list of callables consulted per request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

Fault = Callable[[httpx.Request, int], "httpx.Response | Exception | None"]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _error(status: int, code: str, message: str = "", **details: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message or code, "details": details}})


@dataclass
class Account:
    code: str
    institution: str
    balance: Decimal
    overdraft_limit: Decimal
    daily_max: Decimal | None
    blocked: list[str]
    units: dict[str, int]
    version: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.code,
            "balance": _money(self.balance),
            "overdraft_limit": _money(self.overdraft_limit),
            "available": _money(self.balance + self.overdraft_limit),
            "daily_max": _money(self.daily_max) if self.daily_max is not None else None,
            "active": True,
            "blocked_products": list(self.blocked),
            "units": dict(self.units),
        }


@dataclass
class BackOfficeDouble:
    demo: dict[str, Any]
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    page_limit: int = 5000

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.nodes = {n["code"]: n for n in self.demo["nodes"]}
        self.keys = {t["key"]: t for t in self.demo["terminals"]}
        self.products = {(p["institution"], p["sku"]): p for p in self.demo["products"]}
        self.stock = {
            (node, p["sku"]): Decimal(q) for p in self.demo["products"] for node, q in (p.get("stock") or {}).items()
        }
        self.accounts = {
            c["code"]: Account(
                c["code"],
                c["institution"],
                Decimal(c["balance"]),
                Decimal(c["overdraft_limit"]),
                Decimal(c["daily_max"]) if c.get("daily_max") else None,
                list(c.get("blocked_products") or []),
                dict(c.get("units") or {}),
            )
            for c in self.demo["customers"]
        }
        self.version = 0
        self.sales: dict[str, dict[str, Any]] = {}  # id -> {"body", "terminal", "flags"}
        self.next_number = {t["code"]: 1 + 5000 * i for i, t in enumerate(self.demo["terminals"])}
        self.count = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.count += 1
            number = self.count
            self.requests.append((request.method, request.url.path))
        for fault in self.faults:
            outcome = fault(request, number)
            if isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, httpx.Response):
                return outcome
        terminal = self._terminal(request)
        if terminal is None:
            return _error(401, "authentication_failed")
        path, method = request.url.path, request.method
        with self.lock:
            if path == "/api/v1/pos/config":
                return httpx.Response(200, json=self.config(terminal))
            if path == "/api/v1/pos/catalog":
                return httpx.Response(200, json={"products": self.catalog(terminal)})
            if path == "/api/v1/pos/balances":
                return httpx.Response(200, json=self.balances(terminal, request.url.params))
            if path == "/api/v1/pos/heartbeat" and method == "POST":
                return httpx.Response(200, json={"ok": True})
            if path == "/api/v1/pos/sales" and method == "POST":
                return self.sale_online(terminal, json.loads(request.content))
            if path == "/api/v1/pos/sales/batches" and method == "POST":
                return self.batch(terminal, json.loads(request.content))
            if path.startswith("/api/v1/pos/sales/") and method == "GET":
                stored = self.sales.get(path.rsplit("/", 1)[1])
                if stored is None or stored["terminal"] != terminal["code"]:
                    return _error(404, "not_found")
                return httpx.Response(
                    200, json={**stored["body"], "status": "accepted", "reconciled": True, "flags": stored["flags"]}
                )
        return _error(404, "not_found")

    def _terminal(self, request: httpx.Request) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        return self.keys.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None

    def _institution(self, terminal: dict[str, Any]) -> str:
        return self.nodes[terminal["node"]]["institution"]

    # -- reads -----------------------------------------------------------------------------

    def config(self, terminal: dict[str, Any]) -> dict[str, Any]:
        node = self.nodes[terminal["node"]]
        flag = node["allow_offline_closed_inventory_sales"]
        level = node["numbering_level"]
        invoicing: dict[str, Any] = {"numbering_level": level}
        if level == "terminal":
            start = self.next_number[terminal["code"]]
            base = (start - 1) // 5000 * 5000 + 1
            invoicing["resolution"] = {
                "number": f"R-{terminal['code']}",
                "prefix": "FE",
                "range_from": base,
                "range_to": base + 4999,
                "valid_until": "2027-06-30",
                "next_number": start,
            }
        return {
            "server_time": "2026-11-28T10:00:00-05:00",
            "terminal": {"code": terminal["code"], "name": terminal["code"], "kind": terminal["kind"]},
            "node": {
                "code": node["code"],
                "name": node["code"],
                "allow_offline_closed_inventory_sales": flag,
                "use_last_balance_offline": node["use_last_balance_offline"],
                "balance_sync_interval_seconds": 300,
            },
            "offline": {
                "closed_inventory_sales": flag,
                "paygo_balance_sales": node["use_last_balance_offline"],
                "comandas": "deferred",
                "product_blocks": False,
                "daily_max_consumption": False,
                "self_service": False,
                "consumable_units": False,
                "invoice_numbering": "local" if level == "terminal" else "deferred",
            },
            "invoicing": invoicing,
        }

    def catalog(self, terminal: dict[str, Any]) -> list[dict[str, Any]]:
        institution = self._institution(terminal)
        return [
            {
                "sku": p["sku"],
                "name": p["name"],
                "price": p["price"],
                "tracks_inventory": p["tracks_inventory"],
                "stock": format(self.stock.get((terminal["node"], p["sku"]), Decimal(0)), "f")
                if p["tracks_inventory"]
                else None,
                "requires_preparation": p["requires_preparation"],
                "unit_type": p["unit_type"],
                "active": True,
            }
            for (inst, _), p in self.products.items()
            if inst == institution
        ]

    def balances(self, terminal: dict[str, Any], params: httpx.QueryParams) -> dict[str, Any]:
        institution = self._institution(terminal)
        cursor = params.get("cursor")
        # cursor "version:last_code"; full snapshots page by code
        full = cursor is None or cursor.startswith("full:")
        rows = sorted(
            (a for a in self.accounts.values() if a.institution == institution),
            key=lambda a: (0, a.code) if full else (a.version, a.code),
        )
        if cursor is None:
            after_code, since = "", self.version
        elif full:
            _, since_text, after_code = cursor.split(":", 2)
            since = int(since_text)
        else:
            since, after_code = int(cursor), ""
        rows = [a for a in rows if (a.code > after_code if full else a.version > since)]
        page, rest = rows[: self.page_limit], rows[self.page_limit :]
        if rest:
            next_cursor = f"full:{since}:{page[-1].code}" if full else str(page[-1].version)
        else:
            next_cursor = str(since if full else self.version)
        return {"full": full, "cursor": next_cursor, "has_more": bool(rest), "customers": [a.row() for a in page]}

    # -- writes ----------------------------------------------------------------------------

    def _check(self, terminal: dict[str, Any], sale: dict[str, Any], *, online: bool) -> tuple[list, list]:
        errors, flags = [], []
        institution = self._institution(terminal)
        money = Decimal(0)
        unit_lines: dict[str, Decimal] = {}
        for index, line in enumerate(sale["lines"]):
            product = self.products.get((institution, line["sku"]))
            if product is None:
                errors.append({"code": "unknown_product", "field": f"lines[{index}].sku"})
                continue
            quantity = Decimal(line["quantity"])
            money += quantity * Decimal(line["unit_price"])
            if Decimal(line["unit_price"]) == 0 and product["unit_type"]:
                unit_lines[product["unit_type"]] = unit_lines.get(product["unit_type"], Decimal(0)) + quantity
            if product["tracks_inventory"] and self.stock.get((terminal["node"], line["sku"]), 0) < quantity:
                (errors if online else flags).append(
                    {"code": "insufficient_stock"} if online else "negative_stock_risk"
                )
        paid = sum((Decimal(p["amount"]) for p in sale["payments"] if p["method"] != "units"), Decimal(0))
        units_paid = {p["unit_type"]: Decimal(p["amount"]) for p in sale["payments"] if p["method"] == "units"}
        if paid != money or units_paid != unit_lines:
            errors.append({"code": "totals_mismatch", "field": "payments"})
        account = self.accounts.get(sale.get("customer") or "")
        if sale.get("customer") and account is None:
            errors.append({"code": "unknown_customer", "field": "customer"})
        if account and online:
            paygo = sum((Decimal(p["amount"]) for p in sale["payments"] if p["method"] == "paygo"), Decimal(0))
            if paygo > account.balance + account.overdraft_limit:
                errors.append({"code": "insufficient_balance", "field": "payments"})
            if any(line["sku"] in account.blocked for line in sale["lines"]):
                errors.append({"code": "product_blocked", "field": "lines"})
            for unit_type, amount in units_paid.items():
                if account.units.get(unit_type, 0) < amount:
                    errors.append({"code": "insufficient_units", "field": "payments"})
        invoice = sale.get("invoice")
        if invoice:
            node = self.nodes[terminal["node"]]
            base = (self.next_number[terminal["code"]] - 1) // 5000 * 5000 + 1
            used = {s["body"]["invoice"]["number"] for s in self.sales.values() if s["body"].get("invoice")}
            if node["numbering_level"] != "terminal" or not base <= invoice["number"] <= base + 4999:
                errors.append({"code": "invoice_out_of_range", "field": "invoice.number"})
            elif invoice["number"] in used:
                errors.append({"code": "invoice_number_used", "field": "invoice.number"})
        return errors, flags

    def _store(self, terminal: dict[str, Any], sale: dict[str, Any], flags: list[str]) -> None:
        self.sales[sale["id"]] = {"body": sale, "terminal": terminal["code"], "flags": flags}
        for line in sale["lines"]:
            key = (terminal["node"], line["sku"])
            if key in self.stock:
                self.stock[key] -= Decimal(line["quantity"])
        account = self.accounts.get(sale.get("customer") or "")
        if account:
            for payment in sale["payments"]:
                if payment["method"] == "paygo":
                    account.balance -= Decimal(payment["amount"])
                elif payment["method"] == "units":
                    account.units[payment["unit_type"]] -= int(Decimal(payment["amount"]))
            self.version += 1
            account.version = self.version

    def _same(self, sale: dict[str, Any]) -> bool | None:
        stored = self.sales.get(sale["id"])
        return None if stored is None else stored["body"] == sale

    def sale_online(self, terminal: dict[str, Any], sale: dict[str, Any]) -> httpx.Response:
        same = self._same(sale)
        if same is not None:
            return httpx.Response(200, json=sale) if same else _error(422, "conflict")
        errors, flags = self._check(terminal, sale, online=True)
        if errors:
            return _error(422, errors[0]["code"], "Venta rechazada", errors=errors)
        self._store(terminal, sale, flags)
        return httpx.Response(201, json={**sale, "status": "accepted", "flags": flags})

    def batch(self, terminal: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        sales = body.get("sales") or []
        if len(sales) > 500:
            return _error(413, "batch_too_large", f"A batch holds at most 500 sales; this one has {len(sales)}.")
        results, counts = [], {"accepted": 0, "duplicates": 0, "rejected": 0}
        for sale in sales:
            same = self._same(sale)
            if same is True:
                results.append({"id": sale["id"], "status": "duplicate"})
                counts["duplicates"] += 1
                continue
            errors, flags = self._check(terminal, sale, online=False) if same is None else ([{"code": "conflict"}], [])
            if errors:
                results.append({"id": sale["id"], "status": "rejected", "errors": errors})
                counts["rejected"] += 1
                continue
            self._store(terminal, sale, flags)
            results.append({"id": sale["id"], "status": "accepted", "flags": flags})
            counts["accepted"] += 1
        return httpx.Response(200, json={"batch_id": body.get("batch_id"), **counts, "results": results})


def lost_reply_once(path: str, *, every: int = 1) -> Fault:
    """Let the server handle the request, then lose its answer (as a read timeout would)."""
    state = {"seen": 0}

    def fault(request: httpx.Request, number: int):
        if request.url.path != path:
            return None
        state["seen"] += 1
        if state["seen"] % (every + 1) == 1:
            return _LostReply()
        return None

    return fault


class _LostReply(Exception):
    """Marker handled by :func:`with_lost_replies`."""


def with_lost_replies(double: BackOfficeDouble) -> httpx.MockTransport:
    """A transport whose ``_LostReply`` faults process the request and then time out."""

    def handle(request: httpx.Request) -> httpx.Response:
        try:
            return double.handle(request)
        except _LostReply:
            faults, double.faults = double.faults, []
            try:
                double.handle(request)
            finally:
                double.faults = faults
            raise httpx.ReadTimeout("answer lost", request=request) from None

    return httpx.MockTransport(handle)
