"""Ingest of sales from terminals: offline batches (contract §4) and online sales (§5).

One validation path serves both: :func:`_sale_parse` checks the shape of a sale object
(field paths such as ``lines[0].sku``), :func:`_sale_check` checks it against the
terminal's institution (products, customer, totals, invoice). Rules are evaluated by
``sales.rules`` only; this module gathers the facts and acts on the result.

Idempotency is the database's job: sales are inserted with ``ON CONFLICT DO NOTHING``
and whatever was not inserted is compared with the stored sale by its canonical payload
hash (same → ``duplicate``, different → ``conflict``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, PositiveBigIntegerField, Sum, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from billing.invoicing import SERVER_NUMBERING_LEVELS, InvoiceError, invoice_number_take, invoice_unavailable_error
from billing.models import (
    Customer,
    InvoiceResolution,
    ProductBlock,
    UnitBalance,
)
from billing.reconcile import SalePaymentEffect, sale_balance_movements_append, sale_unit_movements_append
from inventory.models import Product
from inventory.reconcile import SaleLineEffect, sale_stock_movements_append
from nodes.models import Node, NumberingLevel, Terminal
from paygo.bulk_insert import columns_insert, rows_insert
from paygo.errors import ApplicationError
from paygo.wire_format import RFC3339_DATETIME_RE
from sales import tasks
from sales.kitchen import ComandaSale, comandas_create
from sales.locks import sale_rows_lock
from sales.models import (
    InvoiceSource,
    Payment,
    PaymentMethod,
    QuarantinedSale,
    Sale,
    SaleFlag,
    SaleLine,
    UploadBatch,
)
from sales.rules import MONEY_METHODS, CustomerFacts, LineFacts, PaymentFacts, SaleFacts, offline_flags, sale_breaches
from sales.selectors import sale_get_for_terminal

BUSINESS_TZ = ZoneInfo("America/Bogota")
MAX_LINES_PER_SALE = 200
MAX_PAYMENTS_PER_SALE = 50
# Nesting deeper than this is never a real sale; the whole request is refused beyond
# MAX_REQUEST_DEPTH (and orjson cannot re-encode past ~255 levels anyway).
MAX_SALE_DEPTH = 16
MAX_REQUEST_DEPTH = 64
# Dates outside this window are typos or dead clocks, not sales: the sale is malformed.
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_OCCURRED_AT = datetime(2100, 1, 1, tzinfo=UTC)
# An offline sale may legitimately be uploaded days late; beyond this the clock is suspect.
CLOCK_SKEW_PAST_LIMIT = timedelta(days=30)

MONEY_MAX = Decimal("999999999999.99")  # Decimal(14, 2) columns
UNITS_MAX = 2**31 - 1  # UnitMovement.quantity is an integer column
SEQ_MAX = 2**63 - 1
CENT = Decimal("0.01")
MILLI = Decimal("0.001")

_MONEY_RE = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,2})?", re.ASCII)
_QUANTITY_RE = re.compile(r"-?[0-9]{1,11}(?:\.[0-9]{1,3})?", re.ASCII)
# Once, not per payment: the enum's ``values`` property rebuilds its list on every access
# (it showed up in ingest profiles at 500 sales per batch).
_PAYMENT_METHODS = frozenset(PaymentMethod.values)
_UUID_RE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.ASCII | re.IGNORECASE)

# Quarantined payloads that PostgreSQL's jsonb cannot hold exactly (NUL characters,
# floats) or that are nested absurdly deep are stored wrapped: the exact original as JSON text (NUL escaped as
# \u0000) and, when possible, a readable copy with NUL replaced.
SANITIZED_MARKER = "__paygo_sanitized__"


# --- Errors -----------------------------------------------------------------------------


class BatchError(ApplicationError):
    code = "malformed_batch"
    default_message = "El lote no tiene la forma del contrato: {'batch_id': UUID, 'sales': [...]}."


class BatchTooLarge(ApplicationError):
    code = "batch_too_large"
    status_code = 413


class SaleRejected(ApplicationError):
    """An online sale that cannot be stored: every reason in ``details.errors``."""

    code = "sale_rejected"
    status_code = 422
    default_message = "La venta fue rechazada."

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        self.errors = errors
        super().__init__(
            message or "; ".join(e["message"] for e in errors[:5]) or self.default_message,
            code=errors[0]["code"] if errors else "sale_rejected",
            details={"errors": errors},
        )


def _error(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


# --- Results ----------------------------------------------------------------------------


@dataclass
class BatchResult:
    batch_id: str
    accepted: int
    duplicates: int
    rejected: int
    results: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
        }


@dataclass
class OnlineResult:
    created: bool  # False: the same sale was already stored (a retry)
    sale: dict[str, Any]


# --- Parsing (shape only, no database) --------------------------------------------------


@dataclass
class ParsedLine:
    sku: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal = Decimal("0.00")
    product: Product | None = None
    # The quantity and unit price as the payload hash writes them, when already known.
    hash_texts: tuple[str, str] | None = None


@dataclass
class ParsedPayment:
    method: str
    amount: Decimal
    unit_type: str
    # The amount as the payload hash writes it, when already known.
    hash_text: str | None = None


@dataclass(frozen=True)
class ParsedInvoice:
    prefix: str
    number: int
    resolution: str


class CustomerRef(NamedTuple):
    """What ingest reads of a customer: a batch refers to hundreds of them, and a model
    instance each cost more than the rest of the lookup."""

    pk: int
    code: str
    active: bool
    overdraft_limit: Decimal
    daily_max: Decimal | None


@dataclass
class ParsedSale:
    raw: Any
    # The id as str() of its UUID writes it (lowercase, hyphenated): results, payload hash,
    # stored columns and reconciliation all take this text, so a batch never formats or
    # hashes 500 UUID objects (a Python call each) to compare or write them.
    id_text: str
    seq: int
    occurred_at: datetime
    offline: bool
    customer_code: str | None
    lines: list[ParsedLine]
    payments: list[ParsedPayment]
    invoice: ParsedInvoice | None
    known_balance: Decimal | None
    payload_hash: str = ""
    customer: CustomerRef | None = None
    resolution: InvoiceResolution | None = None

    @cached_property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.id_text)

    # Computed once: checks, flags and the stored row each read them (lines and time are
    # not changed after parsing).
    @cached_property
    def business_date(self) -> date:
        return self.occurred_at.astimezone(BUSINESS_TZ).date()

    @cached_property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0.00"))


def json_depth(value: Any, limit: int = MAX_REQUEST_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 1, ``[]`` and ``{}`` are 1,
    ``[[1]]`` is 3 as before: each container adds a level over its deepest child).

    Only containers are visited (one call per object or array, not per scalar) and the
    walk stops ``limit`` levels down, returning ``limit + 1``: the recursion is bounded
    whatever the input, and no caller needs to know more than "too deep".
    """
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 1
    if not children:
        return 1
    if limit <= 1:
        return 2  # a non-empty container on the limit's last level: too deep already
    deepest = 1
    for child in children:
        if isinstance(child, (dict, list)):
            depth = json_depth(child, limit - 1)
            if depth > deepest:
                deepest = depth
                if depth >= limit:
                    break
    return deepest + 1


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _sale_depth(sale: Any) -> int:
    """:func:`json_depth` of one sale object, without a call per container for the shape
    every sale has (an object of scalars and of arrays of flat objects): its lines and
    payments were a few thousand recursive calls per batch. Anything else, or anything
    nested deeper, is measured by :func:`json_depth` itself."""
    if type(sale) is not dict:
        return json_depth(sale)
    if not sale:
        return 1
    scalars = _SCALAR_TYPES
    deepest = 1
    for value in sale.values():
        kind = type(value)
        if kind in scalars:
            continue
        if kind is list:
            depth = 2 if value else 1
            for item in value:
                item_kind = type(item)
                if item_kind is dict:
                    for child in item.values():
                        if type(child) not in scalars:
                            return json_depth(sale)
                    if item:
                        depth = 3
                elif item_kind not in scalars:
                    return json_depth(sale)
        elif kind is dict:
            for child in value.values():
                if type(child) not in scalars:
                    return json_depth(sale)
            depth = 2 if value else 1
        else:
            return json_depth(sale)
        if depth > deepest:
            deepest = depth
    return deepest + 1


def _jsonb_lossy(value: Any) -> bool:
    """True if PostgreSQL's jsonb would refuse or alter ``value``: NUL characters are
    refused, and floats come back as plain numbers (``1e+30`` as an integer)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, float):
            return True
        if isinstance(current, str):
            if "\x00" in current:
                return True
        elif isinstance(current, dict):
            for key, item in current.items():
                if isinstance(key, str) and "\x00" in key:
                    return True
                stack.append(item)
        elif isinstance(current, list):
            stack.extend(current)
    return False


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def quarantine_payload_encode(raw: Any) -> Any:
    """What to store in ``QuarantinedSale.raw_payload`` for ``raw`` (jsonb-safe)."""
    too_deep = json_depth(raw) > MAX_SALE_DEPTH
    # A bare JSON null would become SQL NULL in a JSONField column: wrap it as well.
    if raw is not None and not too_deep and not _jsonb_lossy(raw):
        return raw
    wrapped: dict[str, Any] = {SANITIZED_MARKER: True, "original_json": orjson.dumps(raw).decode()}
    if not too_deep:
        wrapped["payload"] = _without_nul(raw)
    return wrapped


def quarantine_payload_decode(stored: Any) -> Any:
    """The exact sale object the terminal sent, from a stored ``raw_payload``."""
    if isinstance(stored, dict) and stored.get(SANITIZED_MARKER) is True and "original_json" in stored:
        return orjson.loads(stored["original_json"])
    return stored


class _Errors(list):
    def malformed(self, field: str, message: str) -> None:
        self.append(_error("malformed", field, message))


def _text_problem(value: Any, *, max_length: int, allow_empty: bool = False) -> str | None:
    """Why ``value`` is not an acceptable text field, or None: the one rule for texts,
    which :func:`_text` reports and the short path of :func:`_line_parse` tests."""
    if not isinstance(value, str):
        return "Debe ser un texto."
    if "\x00" in value:
        return "Contiene caracteres nulos (NUL)."
    if not value and not allow_empty:
        return "No puede estar vacío."
    if len(value) > max_length:
        return f"Admite máximo {max_length} caracteres."
    return None


def _text(value: Any, field: str, errors: _Errors, *, max_length: int, allow_empty: bool = False) -> str | None:
    problem = _text_problem(value, max_length=max_length, allow_empty=allow_empty)
    if problem is not None:
        errors.malformed(field, problem)
        return None
    return value


# Texts already found well-formed, by pattern: a batch repeats the same few prices and
# quantities thousands of times, and the check and conversion were a tenth of parsing it.
# Bounded (cleared when full) so that hostile input cannot grow it.
_DECIMALS_SEEN: dict[tuple[re.Pattern, str], Decimal] = {}
_DECIMALS_SEEN_MAX = 4096


def _decimal(value: Any, field: str, errors: _Errors, *, pattern: re.Pattern, what: str) -> Decimal | None:
    # JSON integers are exact, so they are accepted; floats are not (0.1 is not 0.1).
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.malformed(field, f"Debe ser {what} en texto, p. ej. «3500.00».")
        return None
    seen = _DECIMALS_SEEN.get((pattern, value))
    if seen is not None:
        return seen
    if not pattern.fullmatch(value):
        errors.malformed(field, f"Debe ser {what} en texto, p. ej. «3500.00».")
        return None
    if len(_DECIMALS_SEEN) >= _DECIMALS_SEEN_MAX:
        _DECIMALS_SEEN.clear()
    number = _DECIMALS_SEEN[(pattern, value)] = Decimal(value)
    return number


def _money(value: Any, field: str, errors: _Errors, *, signed: bool = False) -> Decimal | None:
    amount = _decimal(
        value, field, errors, pattern=_MONEY_RE, what="un valor con máximo 2 decimales y 12 dígitos enteros"
    )
    if amount is not None and amount < 0 and not signed:
        errors.malformed(field, "No puede ser negativo.")
        return None
    return amount


def _datetime(value: Any, field: str, errors: _Errors) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40 or not RFC3339_DATETIME_RE.fullmatch(value):
        errors.malformed(field, "Debe ser una fecha RFC 3339 con zona horaria, p. ej. «2026-11-28T12:01:02-05:00».")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        errors.malformed(field, "Debe ser una fecha RFC 3339 con zona horaria, p. ej. «2026-11-28T12:01:02-05:00».")
        return None
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        parsed = None
    if parsed is None or not EARLIEST_OCCURRED_AT <= parsed < LATEST_OCCURRED_AT:
        errors.malformed(field, "Fecha fuera del rango admitido (2000–2099).")
        return None
    return parsed


# (quantity text, unit price text) -> (quantity, unit price, line total, their texts in
# the payload hash) of lines already parsed without error: a batch repeats a few dozen
# such pairs across ~1,500 lines, and their checks and arithmetic were a fifth of parsing
# it. Bounded like _DECIMALS_SEEN.
SKU_MAX_LENGTH = 64
_LINE_AMOUNTS_SEEN: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, tuple[str, str]]] = {}


def _line_parse(raw: Any, index: int, errors: _Errors) -> ParsedLine | None:
    # Short path for a well-formed line whose amounts were seen before: the sku checked by
    # the same rule as in _line_parse_checked, the amounts' checks known to pass for these
    # exact texts.
    if type(raw) is dict:
        sku = raw.get("sku")
        if _text_problem(sku, max_length=SKU_MAX_LENGTH) is None:
            quantity, unit_price = raw.get("quantity"), raw.get("unit_price")
            if type(quantity) is str and type(unit_price) is str:
                seen = _LINE_AMOUNTS_SEEN.get((quantity, unit_price))
                if seen is not None:
                    return ParsedLine(sku=sku, quantity=seen[0], unit_price=seen[1], total=seen[2], hash_texts=seen[3])
    line = _line_parse_checked(raw, index, errors)
    if line is not None:
        quantity, unit_price = raw["quantity"], raw["unit_price"]
        if type(quantity) is str and type(unit_price) is str:
            if len(_LINE_AMOUNTS_SEEN) >= _DECIMALS_SEEN_MAX:
                _LINE_AMOUNTS_SEEN.clear()
            line.hash_texts = _line_hash_texts(line)
            _LINE_AMOUNTS_SEEN[(quantity, unit_price)] = (line.quantity, line.unit_price, line.total, line.hash_texts)
    return line


def _line_parse_checked(raw: Any, index: int, errors: _Errors) -> ParsedLine | None:
    path = f"lines[{index}]"
    if not isinstance(raw, dict):
        errors.malformed(path, "Cada línea debe ser un objeto.")
        return None
    sku = _text(raw.get("sku"), f"{path}.sku", errors, max_length=SKU_MAX_LENGTH)
    quantity = _decimal(
        raw.get("quantity"),
        f"{path}.quantity",
        errors,
        pattern=_QUANTITY_RE,
        what="una cantidad con máximo 3 decimales y 11 dígitos enteros",
    )
    if quantity is not None and quantity <= 0:
        errors.append(_error("invalid_quantity", f"{path}.quantity", "La cantidad debe ser mayor que cero."))
        quantity = None
    unit_price = _money(raw.get("unit_price"), f"{path}.unit_price", errors)
    if sku is None or quantity is None or unit_price is None:
        return None
    total = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    if total > MONEY_MAX:
        errors.malformed(path, "El total de la línea excede el máximo admitido.")
        return None
    return ParsedLine(sku=sku, quantity=quantity, unit_price=unit_price, total=total)


# Amount text -> (amount, its text in the payload hash) of money payments already parsed
# without error: a batch repeats a few dozen amounts across its ~650 payments. Bounded like
# _DECIMALS_SEEN.
_PAYMENT_AMOUNTS_SEEN: dict[str, tuple[Decimal, str]] = {}


def _payment_parse(raw: Any, index: int, errors: _Errors) -> ParsedPayment | None:
    # Short path for a money payment (paygo, cash, card: no unit type) whose amount text was
    # seen before: its checks are known to pass for this exact text.
    if type(raw) is dict:
        method, amount = raw.get("method"), raw.get("amount")
        if type(amount) is str and type(method) is str and method in MONEY_METHODS:
            seen = _PAYMENT_AMOUNTS_SEEN.get(amount)
            if seen is not None:
                return ParsedPayment(method=method, amount=seen[0], unit_type="", hash_text=seen[1])
    payment = _payment_parse_checked(raw, index, errors)
    if payment is not None and payment.method in MONEY_METHODS and type(raw["amount"]) is str:
        if len(_PAYMENT_AMOUNTS_SEEN) >= _DECIMALS_SEEN_MAX:
            _PAYMENT_AMOUNTS_SEEN.clear()
        payment.hash_text = str(payment.amount.quantize(CENT))
        _PAYMENT_AMOUNTS_SEEN[raw["amount"]] = (payment.amount, payment.hash_text)
    return payment


def _payment_parse_checked(raw: Any, index: int, errors: _Errors) -> ParsedPayment | None:
    path = f"payments[{index}]"
    if not isinstance(raw, dict):
        errors.malformed(path, "Cada pago debe ser un objeto.")
        return None
    method = raw.get("method")
    if not isinstance(method, str) or method not in _PAYMENT_METHODS:
        errors.malformed(f"{path}.method", "Medio de pago inválido: use paygo, cash, card o units.")
        method = None
    amount = _money(raw.get("amount"), f"{path}.amount", errors)
    unit_type = ""
    if method == PaymentMethod.UNITS:
        unit_type = _text(raw.get("unit_type"), f"{path}.unit_type", errors, max_length=32) or ""
        if amount is not None and (amount != amount.to_integral_value() or amount > UNITS_MAX):
            errors.malformed(f"{path}.amount", "Las unidades deben ser un número entero.")
            amount = None
        if not unit_type:
            return None
    if method is None or amount is None:
        return None
    return ParsedPayment(method=method, amount=amount, unit_type=unit_type)


def _invoice_parse(raw: Any, errors: _Errors) -> ParsedInvoice | None:
    if not isinstance(raw, dict):
        errors.malformed("invoice", "Debe ser un objeto {prefix, number, resolution} o null.")
        return None
    prefix = _text(raw.get("prefix", ""), "invoice.prefix", errors, max_length=8, allow_empty=True)
    number = raw.get("number")
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= SEQ_MAX:
        errors.malformed("invoice.number", "Debe ser un número entero positivo.")
        number = None
    resolution = _text(raw.get("resolution"), "invoice.resolution", errors, max_length=32)
    if prefix is None or number is None or resolution is None:
        return None
    return ParsedInvoice(prefix=prefix, number=number, resolution=resolution)


def _line_hash_texts(line: ParsedLine) -> tuple[str, str]:
    return str(line.quantity.quantize(MILLI)), str(line.unit_price)


def _payload_hash(sale: ParsedSale) -> str:
    """SHA-256 of the normalized sale: equal for any two encodings of the same sale."""
    canonical = {
        "id": sale.id_text,
        "seq": sale.seq,
        "occurred_at": sale.occurred_at.isoformat(),
        "offline": sale.offline,
        "customer": sale.customer_code,
        "lines": [
            {"sku": line.sku, "quantity": texts[0], "unit_price": texts[1]}
            for line in sale.lines
            for texts in (line.hash_texts or _line_hash_texts(line),)
        ],
        "payments": [
            {"method": p.method, "amount": p.hash_text or str(p.amount.quantize(CENT)), "unit_type": p.unit_type}
            for p in sale.payments
        ],
        "invoice": (
            {"prefix": sale.invoice.prefix, "number": sale.invoice.number, "resolution": sale.invoice.resolution}
            if sale.invoice
            else None
        ),
        "known_balance": str(sale.known_balance.quantize(CENT)) if sale.known_balance is not None else None,
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _sale_parse(raw: Any, *, online: bool, depth: int | None = None) -> tuple[ParsedSale | None, list[dict[str, str]]]:
    """Check the shape of one sale object; return it parsed, or every malformation found.

    ``depth``: the sale's :func:`json_depth` when the caller already measured it.
    """
    errors = _Errors()
    if not isinstance(raw, dict):
        errors.malformed("", "La venta debe ser un objeto JSON.")
        return None, errors
    if (json_depth(raw) if depth is None else depth) > MAX_SALE_DEPTH:
        errors.malformed("", "La venta está anidada a una profundidad inadmisible.")
        return None, errors

    sale_id = raw.get("id")
    if not isinstance(sale_id, str) or not _UUID_RE.fullmatch(sale_id):
        errors.malformed("id", "Debe ser un UUID.")
        sale_id = None
    elif len(sale_id) == 36:
        # 32 hex digits and all four hyphens, where str() of a UUID puts them.
        sale_id = sale_id.lower()
    else:
        sale_id = str(uuid.UUID(sale_id))
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= SEQ_MAX:
        errors.malformed("seq", "Debe ser un entero no negativo.")
        seq = None
    occurred_at = _datetime(raw.get("occurred_at"), "occurred_at", errors)
    offline = raw.get("offline")
    if not isinstance(offline, bool):
        errors.malformed("offline", "Debe ser true o false.")
        offline = None
    elif online and offline:
        errors.malformed("offline", "Una venta sin conexión se envía en un lote (/pos/sales/batches).")
    customer_code = raw.get("customer")
    if customer_code is not None:
        customer_code = _text(customer_code, "customer", errors, max_length=64)

    raw_lines = raw.get("lines")
    lines: list[ParsedLine | None] = []
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.malformed("lines", "Debe ser una lista con al menos una línea.")
    elif len(raw_lines) > MAX_LINES_PER_SALE:
        errors.malformed("lines", f"Una venta admite máximo {MAX_LINES_PER_SALE} líneas.")
    else:
        lines = [_line_parse(item, i, errors) for i, item in enumerate(raw_lines)]

    raw_payments = raw.get("payments")
    payments: list[ParsedPayment | None] = []
    if not isinstance(raw_payments, list):
        errors.malformed("payments", "Debe ser una lista de pagos.")
    elif len(raw_payments) > MAX_PAYMENTS_PER_SALE:
        errors.malformed("payments", f"Una venta admite máximo {MAX_PAYMENTS_PER_SALE} pagos.")
    else:
        payments = [_payment_parse(item, i, errors) for i, item in enumerate(raw_payments)]

    invoice = None
    if raw.get("invoice") is not None:
        invoice = _invoice_parse(raw["invoice"], errors)

    known_balance = None
    if raw.get("known_balance") is not None:
        known_balance = _money(raw["known_balance"], "known_balance", errors, signed=True)

    parsed_lines = [line for line in lines if line is not None]
    if parsed_lines and sum(line.total for line in parsed_lines) > MONEY_MAX:
        errors.malformed("lines", "El total de la venta excede el máximo admitido.")
    if errors:
        return None, errors
    sale = ParsedSale(
        raw=raw,
        id_text=sale_id,
        seq=seq,
        occurred_at=occurred_at,
        offline=offline,
        customer_code=customer_code,
        lines=parsed_lines,
        payments=[p for p in payments if p is not None],
        invoice=invoice,
        known_balance=known_balance,
    )
    sale.payload_hash = _payload_hash(sale)
    return sale, []


def _raw_sale_id(raw: Any) -> str:
    """The id as the terminal sent it, for the quarantine and the result (may be junk)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value).replace("\x00", "\ufffd")[:64]
    return ""


# --- Checks against the institution -------------------------------------------------------


@dataclass
class _Context:
    """Everything a set of sales refers to, loaded with one query per table."""

    terminal: Terminal
    # terminal.node, read for every sale (a descriptor call each through the terminal)
    node: Node = field(init=False)
    products: dict[str, Product] = field(default_factory=dict)
    customers: dict[str, CustomerRef] = field(default_factory=dict)
    blocked_skus: dict[int, frozenset[str]] = field(default_factory=dict)
    resolutions: dict[tuple[str, str], InvoiceResolution] = field(default_factory=dict)
    # (resolution id, number) -> id of the sale already holding it
    used_numbers: dict[tuple[int, int], uuid.UUID] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node = self.terminal.node


def _context_load(*, terminal: Terminal, sales: list[ParsedSale]) -> _Context:
    """Load products, customers, blocks and resolutions, scoped to the terminal's institution."""
    ctx = _Context(terminal=terminal)
    institution_id = terminal.node.institution_id
    skus = {line.sku for sale in sales for line in sale.lines}
    if skus:
        ctx.products = {p.sku: p for p in Product.objects.filter(institution_id=institution_id, sku__in=skus)}
    codes = {sale.customer_code for sale in sales if sale.customer_code}
    if codes:
        # Unordered: Customer's default ordering joins the institution and sorts, for a dict.
        ctx.customers = {
            row[1]: CustomerRef(*row)
            for row in Customer.objects.filter(institution_id=institution_id, code__any=codes)
            .order_by()
            .values_list(*CustomerRef._fields)
        }
    if ctx.customers:
        blocked: dict[int, set[str]] = defaultdict(set)
        for customer_id, sku in ProductBlock.objects.filter(
            customer_id__any=[c.pk for c in ctx.customers.values()]
        ).values_list("customer_id", "product__sku"):
            blocked[customer_id].add(sku)
        ctx.blocked_skus = {pk: frozenset(skus) for pk, skus in blocked.items()}
    invoiced = [sale for sale in sales if sale.invoice]
    if invoiced:
        ctx.resolutions = {
            (r.number, r.prefix): r
            for r in InvoiceResolution.objects.filter(terminal=terminal, level=NumberingLevel.TERMINAL)
        }
        wanted = {
            (ctx.resolutions[key].pk, sale.invoice.number)
            for sale in invoiced
            if (key := (sale.invoice.resolution, sale.invoice.prefix)) in ctx.resolutions
        }
        if wanted:
            ctx.used_numbers = {
                (resolution_id, number): sale_id
                for resolution_id, number, sale_id in Sale.objects.filter(
                    invoice_resolution_id__in={r for r, _ in wanted}, invoice_number__in={n for _, n in wanted}
                ).values_list("invoice_resolution_id", "invoice_number", "id")
            }
    return ctx


def _sale_check(sale: ParsedSale, ctx: _Context, *, online: bool) -> list[dict[str, str]]:
    """References and totals: products, customer, payments, invoice. Resolves them on ``sale``."""
    errors: list[dict[str, str]] = []
    if sale.customer_code:
        customer = ctx.customers.get(sale.customer_code)
        if customer is None:
            errors.append(_error("unknown_customer", "customer", f"Cliente desconocido: {sale.customer_code}."))
        elif online and not customer.active:
            errors.append(_error("unknown_customer", "customer", f"El cliente {sale.customer_code} está inactivo."))
        else:
            sale.customer = customer
    for index, line in enumerate(sale.lines):
        product = ctx.products.get(line.sku)
        if product is None:
            errors.append(_error("unknown_product", f"lines[{index}].sku", f"Producto desconocido: {line.sku}."))
        elif online and not product.active:
            errors.append(_error("unknown_product", f"lines[{index}].sku", f"El producto {line.sku} está inactivo."))
        else:
            line.product = product

    for index, payment in enumerate(sale.payments):
        if payment.method in (PaymentMethod.PAYGO, PaymentMethod.UNITS) and not sale.customer_code:
            errors.append(
                _error("malformed", "customer", f"El pago «{payment.method}» (pagos[{index}]) requiere cliente.")
            )
            break

    if all(line.product is not None for line in sale.lines):
        errors.extend(_totals_check(sale))
    if sale.invoice is not None:
        errors.extend(_invoice_check(sale, ctx))
    return errors


def _totals_check(sale: ParsedSale) -> list[dict[str, str]]:
    """Money payments add up to Σ quantity × unit_price (each line rounded to cents, as
    stored); each ``units`` payment counts the quantity of the lines of its unit type,
    and those lines carry a price of zero."""
    errors = []
    money = sum((p.amount for p in sale.payments if p.method in MONEY_METHODS), Decimal("0"))
    if money != sale.total:
        errors.append(
            _error(
                "totals_mismatch",
                "payments",
                f"Los pagos en dinero suman {money} y las líneas suman {sale.total}.",
            )
        )
    units_paid: dict[str, Decimal] = defaultdict(Decimal)
    first_index: dict[str, int] = {}
    for index, payment in enumerate(sale.payments):
        if payment.method == PaymentMethod.UNITS:
            units_paid[payment.unit_type] += payment.amount
            first_index.setdefault(payment.unit_type, index)
    for unit_type, paid in units_paid.items():
        lines = [(i, line) for i, line in enumerate(sale.lines) if line.product.unit_type == unit_type]
        quantity = sum((line.quantity for _, line in lines), Decimal("0"))
        if quantity != paid:
            errors.append(
                _error(
                    "totals_mismatch",
                    f"payments[{first_index[unit_type]}].amount",
                    f"Se pagan {paid} unidades de {unit_type} y las líneas de ese tipo suman {quantity}.",
                )
            )
        errors.extend(
            _error(
                "totals_mismatch",
                f"lines[{i}].unit_price",
                f"La línea de {line.sku} se paga con unidades y debe llevar precio 0.00.",
            )
            for i, line in lines
            if line.unit_price != 0
        )
    return errors


def _invoice_check(sale: ParsedSale, ctx: _Context) -> list[dict[str, str]]:
    invoice = sale.invoice
    node = ctx.node

    def invalid(message: str) -> list[dict[str, str]]:
        return [_error("invalid_invoice_number", "invoice", message)]

    if node.invoice_numbering_level != NumberingLevel.TERMINAL:
        return invalid("Este nodo no lleva consecutivos por caja: la venta debe enviarse sin factura.")
    resolution = ctx.resolutions.get((invoice.resolution, invoice.prefix))
    if resolution is None:
        return invalid(f"La resolución {invoice.resolution} con prefijo «{invoice.prefix}» no es de esta caja.")
    if not resolution.active:
        return invalid(f"La resolución {invoice.resolution} está inactiva.")
    if not resolution.range_from <= invoice.number <= resolution.range_to:
        return invalid(
            f"El número {invoice.number} está fuera del rango {resolution.range_from}–{resolution.range_to}."
        )
    if not resolution.valid_from <= sale.business_date <= resolution.valid_until:
        return invalid(f"La resolución {invoice.resolution} no estaba vigente el {sale.business_date}.")
    holder = ctx.used_numbers.get((resolution.pk, invoice.number))
    if holder is not None and holder != sale.id:
        return invalid(f"El número {invoice.prefix}{invoice.number} ya fue usado por otra venta.")
    sale.resolution = resolution
    return []


# --- Facts and flags ---------------------------------------------------------------------


def _sale_facts(
    sale: ParsedSale,
    ctx: _Context,
    *,
    stock: dict[int, Decimal] | None = None,
    balance_before: Decimal | None = None,
    spent_today_before: Decimal | None = None,
    units_before: dict[str, int] | None = None,
) -> SaleFacts:
    """The facts ``sales.rules`` needs. Unknown running state stays None (offline ingest)."""
    terminal, node = ctx.terminal, ctx.node
    customer = None
    if sale.customer is not None:
        customer = CustomerFacts(
            blocked_skus=ctx.blocked_skus.get(sale.customer.pk, frozenset()),
            overdraft_limit=sale.customer.overdraft_limit,
            daily_max=sale.customer.daily_max,
            balance_before=balance_before,
            spent_today_before=spent_today_before,
            units_before=units_before,
        )
    return SaleFacts(
        offline=sale.offline,
        terminal_kind=terminal.kind,
        allow_offline_closed_inventory_sales=node.allow_offline_closed_inventory_sales,
        use_last_balance_offline=node.use_last_balance_offline,
        # Positional: the facts' fields in order (keywords cost a named tuple more to build).
        lines=tuple(
            LineFacts(
                i,
                line.sku,
                line.quantity,
                line.unit_price,
                product.tracks_inventory,
                product.unit_type,
                product.price,
                stock.get(product.pk, Decimal("0")) if stock is not None and product.tracks_inventory else None,
            )
            for i, line in enumerate(sale.lines)
            for product in (line.product,)
        ),
        payments=tuple(PaymentFacts(i, p.method, p.amount, p.unit_type) for i, p in enumerate(sale.payments)),
        customer=customer,
    )


def _clock_skew(sale: ParsedSale, received_at: datetime) -> dict[str, Any] | None:
    """Flag detail when the terminal's clock cannot be right, else None.

    Ahead of the server by more than the tolerance is always wrong. Behind is normal for
    offline sales uploaded late, so only an implausible delay counts (online sales happen
    now, so the tolerance applies on both sides).
    """
    ahead = sale.occurred_at - received_at
    tolerance = settings.PAYGO_CLOCK_SKEW_TOLERANCE
    behind_limit = CLOCK_SKEW_PAST_LIMIT if sale.offline else tolerance
    if ahead <= tolerance and -ahead <= behind_limit:
        return None
    return {
        "field": "occurred_at",
        "message": f"La hora de la venta difiere {abs(int(ahead.total_seconds()))} s de la hora del servidor.",
        "skew_seconds": int(ahead.total_seconds()),
    }


# --- Writing -----------------------------------------------------------------------------


@dataclass
class _Prepared:
    """A sale ready to store: its column values by attribute name (``customer_id``…),
    the id as its text (:attr:`ParsedSale.id_text`)."""

    parsed: ParsedSale
    values: dict[str, Any]
    flags: dict[str, dict]
    id: str = field(init=False)  # values["id"], read for every line, payment and flag

    def __post_init__(self) -> None:
        self.id = self.values["id"]

    @cached_property
    def sale(self) -> Sale:
        """A model instance of the values (an online sale posts its effects from it); a
        batch never builds one."""
        sale = Sale(**{**self.values, "id": self.parsed.id})
        sale._state.adding = False
        return sale


def _prepare(
    sale: ParsedSale, ctx: _Context, *, flags: dict[str, dict], batch: UploadBatch | None, received_at: datetime
) -> _Prepared:
    terminal = ctx.terminal
    values = {
        "id": sale.id_text,
        "institution_id": ctx.node.institution_id,
        "node_id": terminal.node_id,
        "terminal_id": terminal.pk,
        "customer_id": sale.customer.pk if sale.customer else None,
        "batch_id": batch.pk if batch else None,
        "seq": sale.seq,
        "occurred_at": sale.occurred_at,
        "received_at": received_at,
        "business_date": sale.business_date,
        "offline": sale.offline,
        "total": sale.total,
        "known_balance": sale.known_balance,
        "payload_hash": sale.payload_hash,
        "reconciled_at": None,
        "invoice_resolution_id": sale.resolution.pk if sale.resolution else None,
        "invoice_prefix": sale.invoice.prefix if sale.resolution else "",
        "invoice_number": sale.invoice.number if sale.resolution else None,
        "invoice_source": InvoiceSource.TERMINAL if sale.resolution else "",
    }
    skew = _clock_skew(sale, received_at)
    if skew:
        flags = {**flags, "clock_skew": skew}
    return _Prepared(parsed=sale, values=values, flags=flags)


# Every column of a sale, by field name, in the order of _prepare's values (by attname).
_SALE_COLUMNS = {f.attname: f.name for f in Sale._meta.concrete_fields}


def _sales_insert(prepared: list[_Prepared]) -> list[_Prepared]:
    """Insert the sales; return those NOT inserted (a stored or concurrent copy, or a
    taken invoice number), usually none. ``prepared`` must not repeat an id."""
    columns = {name: [p.values[attname] for p in prepared] for attname, name in _SALE_COLUMNS.items()}
    rows = columns_insert(Sale, columns, returning=("id",), on_conflict_do_nothing=True)
    if len(rows) == len(prepared):
        return []  # one row returned per sale inserted, and the ids are distinct
    inserted = {str(row[0]) for row in rows}
    return [p for p in prepared if p.id not in inserted]


def _flags_insert(prepared: list[_Prepared]) -> None:
    flags = [(p.id, code, detail) for p in prepared for code, detail in p.flags.items()]
    now = timezone.now()
    columns_insert(
        SaleFlag,
        {
            "sale": [sale_id for sale_id, _, _ in flags],
            "code": [code for _, code, _ in flags],
            "detail": [detail for _, _, detail in flags],
            "created_at": [now] * len(flags),
        },
    )


def _children_insert(prepared: list[_Prepared]) -> tuple[list[SaleLine], list[Payment]]:
    """Insert lines, payments and flags of freshly inserted sales (one statement each) and
    return the lines and payments with their ids (an online sale posts its effects from them)."""
    lines = [
        SaleLine(
            sale_id=p.parsed.id,
            position=i,
            product_id=line.product.pk,
            quantity=line.quantity,
            unit_price=line.unit_price,
            total=line.total,
        )
        for p in prepared
        for i, line in enumerate(p.parsed.lines)
    ]
    payments = [
        Payment(sale_id=p.parsed.id, position=i, method=pay.method, amount=pay.amount, unit_type=pay.unit_type)
        for p in prepared
        for i, pay in enumerate(p.parsed.payments)
    ]
    for model, objs in ((SaleLine, lines), (Payment, payments)):
        fields = [f.name for f in model._meta.concrete_fields if f.name != "id"]
        ids = {
            (sale_id, position): pk
            for pk, sale_id, position in rows_insert(model, objs, fields=fields, returning=("id", "sale", "position"))
        }
        for obj in objs:
            obj.pk = ids[(obj.sale_id, obj.position)]
    _flags_insert(prepared)
    return lines, payments


def _batch_children_insert(prepared: list[_Prepared]) -> None:
    """Insert lines, payments and flags of a batch's freshly inserted sales, one statement
    each, straight from the parsed sales (no model instances: reconciliation reads them
    back later, nothing here needs their ids)."""
    lines = [(p.id, i, line) for p in prepared for i, line in enumerate(p.parsed.lines)]
    payments = [(p.id, i, pay) for p in prepared for i, pay in enumerate(p.parsed.payments)]
    columns_insert(
        SaleLine,
        {
            "sale": [sale_id for sale_id, _, _ in lines],
            "position": [i for _, i, _ in lines],
            "product": [line.product.pk for _, _, line in lines],
            "quantity": [line.quantity for _, _, line in lines],
            "unit_price": [line.unit_price for _, _, line in lines],
            "total": [line.total for _, _, line in lines],
        },
    )
    columns_insert(
        Payment,
        {
            "sale": [sale_id for sale_id, _, _ in payments],
            "position": [i for _, i, _ in payments],
            "method": [pay.method for _, _, pay in payments],
            "amount": [pay.amount for _, _, pay in payments],
            "unit_type": [pay.unit_type for _, _, pay in payments],
        },
    )
    _flags_insert(prepared)


def _resolutions_advance(prepared: list[_Prepared]) -> None:
    """Move each used resolution's ``next_number`` past the highest number used (one UPDATE)."""
    highest: dict[int, int] = {}
    for p in prepared:
        key = p.values["invoice_resolution_id"]
        if key:
            highest[key] = max(highest.get(key, 0), p.values["invoice_number"])
    if not highest:
        return
    InvoiceResolution.objects.filter(pk__in=highest).update(
        next_number=Greatest(
            F("next_number"),
            Case(
                *[When(pk=pk, then=Value(n + 1)) for pk, n in highest.items()],
                default=F("next_number"),
                output_field=PositiveBigIntegerField(),
            ),
        )
    )


def _stored_sales(ids: Iterable[str]) -> dict[str, tuple[str, int]]:
    """id text -> (payload hash, terminal id) of the sales already stored among ``ids``
    (texts as :attr:`ParsedSale.id_text`)."""
    ids = list(ids)
    if not ids:
        return {}
    # Unordered: the default ordering (by time of sale) would sort rows only read into a dict.
    stored = Sale.objects.filter(pk__any=ids).order_by().values_list("pk", "payload_hash", "terminal_id")
    return {str(pk): (h, t) for pk, h, t in stored}


def _replay_outcome(sale: ParsedSale, stored: tuple[str, int], terminal: Terminal) -> dict[str, str] | None:
    """None if ``sale`` is the stored sale again (a duplicate), else the conflict error."""
    payload_hash, terminal_id = stored
    if payload_hash == sale.payload_hash and terminal_id == terminal.pk:
        return None
    return _error(
        "conflict",
        "id",
        f"Ya existe una venta con el id {sale.id_text} y otro contenido; se conserva la primera versión.",
    )


def _quarantine(
    *, terminal: Terminal, batch: UploadBatch | None, received_at: datetime, rejected: list[tuple[Any, list[dict]]]
) -> None:
    """Keep every rejected sale whole. A retried batch does not quarantine the same
    rejected sale twice: a pending row with the same payload and errors is enough."""
    if not rejected:
        return
    entries = [(_raw_sale_id(raw), quarantine_payload_encode(raw), errors) for raw, errors in rejected]
    pending = defaultdict(list)
    for sale_id, payload, errors in QuarantinedSale.objects.filter(
        terminal=terminal, status="pending", sale_id__in={e[0] for e in entries}
    ).values_list("sale_id", "raw_payload", "errors"):
        pending[sale_id].append((payload, errors))
    rows = []
    for sale_id, payload, errors in entries:
        if (payload, errors) in pending[sale_id]:
            continue
        pending[sale_id].append((payload, errors))
        codes = ",".join(dict.fromkeys(e["code"] for e in errors))
        rows.append(
            QuarantinedSale(
                sale_id=sale_id,
                terminal=terminal,
                batch=batch,
                raw_payload=payload,
                errors=errors,
                error_codes=codes[:255],
                received_at=received_at,
            )
        )
    fields = ["sale_id", "terminal", "batch", "raw_payload", "errors", "error_codes", "received_at", "status", "note"]
    rows_insert(QuarantinedSale, rows, fields=fields)


def _terminal_hold(terminal: Terminal, now: datetime, *, upload: bool) -> None:
    """The transaction's first write: the terminal's ``last_seen_at`` (and
    ``last_upload_at``), which locks its row, and its node's row locked ``FOR KEY SHARE``
    (what the sales' keys take when they are inserted, taken first), both until commit.

    So the node and institution the sales are stored under cannot change under them: an
    admin moving the AP to another node, or its node to another institution, waits for
    this transaction and then sees its sales (``clean()`` refuses the move); one committed
    since the terminal was authenticated is read here and used instead. One statement,
    which replaces the touch the transaction made anyway. Concurrent uploads of one
    terminal (retries of one batch) wait for each other here.
    """
    values = {"last_seen_at": now}
    if upload:
        values["last_upload_at"] = now
    if connection.vendor != "postgresql":
        # SQLite opens every transaction IMMEDIATE: once written, nothing moves until commit.
        Terminal.objects.filter(pk=terminal.pk).update(**values)
        row = Terminal.objects.filter(pk=terminal.pk).values_list("node_id", "node__institution_id").first()
    else:
        terminals, nodes = Terminal._meta.db_table, Node._meta.db_table
        assignments = ", ".join(f"{connection.ops.quote_name(column)} = %s" for column in values)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH touched AS (UPDATE {terminals} SET {assignments} WHERE id = %s RETURNING node_id)"
                f" SELECT node.id, node.institution_id FROM {nodes} node JOIN touched ON node.id = touched.node_id"
                " FOR KEY SHARE OF node",
                [*values.values(), terminal.pk],
            )
            row = cursor.fetchone()
    if row is None:  # deleted since its key was checked: the key is gone with it
        raise ApplicationError(
            "Llave de AP desconocida, revocada o inactiva.", code="authentication_failed", status_code=401
        )
    node_id, institution_id = row
    if node_id != terminal.node_id or institution_id != terminal.node.institution_id:
        terminal.node = Node.objects.get(pk=node_id)


def _reconcile_on_commit(sale_ids: list[str]) -> None:
    if not sale_ids:
        return
    ids = list(sale_ids)
    # robust: the sales are committed; a broker outage must not turn the answer into a
    # 500 (the terminal would resend for nothing). The periodic sweep catches up.
    transaction.on_commit(lambda: tasks.sales_reconcile_enqueue(sale_ids=ids), robust=True)


# --- Offline batches (§4) ------------------------------------------------------------------


def _batch_envelope_check(batch_id: Any, sales: Any) -> tuple[uuid.UUID, list[int]]:
    """The batch's id and the nesting depth of each sale, or :class:`BatchError`."""
    if not isinstance(sales, list):
        raise BatchError(details={"field": "sales"})
    limit = settings.PAYGO_MAX_BATCH_SALES
    if len(sales) > limit:
        raise BatchTooLarge(
            f"Un lote admite máximo {limit} ventas; este trae {len(sales)}.",
            details={"max_sales": limit, "sales": len(sales)},
        )
    if not isinstance(batch_id, str) or not _UUID_RE.fullmatch(batch_id):
        raise BatchError("batch_id debe ser un UUID.", details={"field": "batch_id"})
    depths = [_sale_depth(sale) for sale in sales]
    if 1 + max(depths, default=0) > MAX_REQUEST_DEPTH:
        raise BatchError("El lote está anidado a una profundidad inadmisible.", details={"field": "sales"})
    return uuid.UUID(batch_id), depths


def sale_batch_ingest(
    *, terminal: Terminal, batch_id: Any, sales: Any, received_at: datetime | None = None
) -> BatchResult:
    """Store a batch of offline sales from ``terminal``, accepting each sale on its own.

    Envelope errors (``sales`` not a list, more than ``PAYGO_MAX_BATCH_SALES``, bad
    ``batch_id``) raise before anything is stored. Otherwise every sale gets a result in
    the order sent: ``accepted`` (stored with its lines, payments and ingest-time flags),
    ``duplicate`` (same id and content already stored) or ``rejected`` (kept in
    :class:`~sales.models.QuarantinedSale` with its raw payload and errors).

    Idempotent by sale id, enforced by the primary key (``INSERT … ON CONFLICT DO
    NOTHING``), so concurrent copies of one batch store each sale once. Locks: the
    terminal's row first and its node's ``FOR KEY SHARE`` (:func:`_terminal_hold`), then
    the inserted rows and the resolution row whose ``next_number`` advances, all until
    commit. One transaction for the whole batch, committed before answering.
    Side effects: ``UploadBatch`` row, terminal's ``last_upload_at``/``last_seen_at``,
    resolutions' ``next_number``; on commit, reconciliation is enqueued for accepted sales.
    Stock and balances are NOT touched: reconciliation applies them in time order.
    """
    received_at = received_at or timezone.now()
    batch_uuid, depths = _batch_envelope_check(batch_id, sales)
    results: list[dict[str, Any] | None] = [None] * len(sales)
    rejected: list[tuple[Any, list[dict]]] = []

    def reject(index: int, raw: Any, errors: list[dict[str, str]], sale_id: str | None = None) -> None:
        results[index] = {"id": sale_id or _raw_sale_id(raw) or None, "status": "rejected", "errors": errors}
        rejected.append((raw, errors))

    parsed: dict[int, ParsedSale] = {}
    for index, raw in enumerate(sales):
        sale, errors = _sale_parse(raw, online=False, depth=depths[index])
        if errors:
            reject(index, raw, errors)
        else:
            parsed[index] = sale

    with transaction.atomic():
        _terminal_hold(terminal, received_at, upload=True)
        batch = UploadBatch.objects.create(
            batch_id=batch_uuid, terminal=terminal, received_at=received_at, sales_count=len(sales)
        )
        first_index: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []  # (index, index of the first copy in this batch)
        fresh: list[tuple[int, ParsedSale]] = []
        for index, sale in parsed.items():
            if sale.id_text in first_index:
                repeats.append((index, first_index[sale.id_text]))
                continue
            first_index[sale.id_text] = index
            fresh.append((index, sale))

        # Whether a sale is stored already (a retry, or another content under its id) is
        # asked only of the sales the insert below skips or the checks refuse, after the
        # insert: one read of the few instead of one of all 500 before it, whose primary-key
        # probes the insert's ON CONFLICT makes again anyway. A stored sale answers
        # duplicate or conflict whatever the checks say of it now, as it did when read first.
        ctx = _context_load(terminal=terminal, sales=[s for _, s in fresh])
        prepared: dict[int, _Prepared] = {}
        refused: dict[int, list[dict[str, str]]] = {}
        claimed: set[tuple[int, int]] = set()
        for index, sale in fresh:
            errors = _sale_check(sale, ctx, online=False)
            if not errors and sale.resolution is not None:
                key = (sale.resolution.pk, sale.invoice.number)
                if key in claimed:
                    errors = [
                        _error(
                            "invalid_invoice_number",
                            "invoice",
                            f"El número {sale.invoice.prefix}{sale.invoice.number} se repite en este lote.",
                        )
                    ]
                claimed.add(key)
            if errors:
                refused[index] = errors
                continue
            flags = offline_flags(sale_breaches(_sale_facts(sale, ctx)))
            prepared[index] = _prepare(sale, ctx, flags=flags, batch=batch, received_at=received_at)

        # In id order: the rows of a batch then reach the id-led indexes (the sales' primary
        # key, the lines' and payments' (sale, position)) and the foreign-key checks on
        # the sales at commit in key order, one pass over their pages instead of 500
        # random probes (their random UUIDs are what makes these indexes grow costly).
        # (PostgreSQL orders uuids as their 128-bit integers, which is the order of their
        # lowercase hyphenated texts: fixed width, hyphens in the same places, 0-9 < a-f.)
        by_id = sorted(prepared.values(), key=lambda p: p.id)
        lost = {p.id for p in _sales_insert(by_id)}
        # Skipped rows are stored already (this batch again, an earlier upload, a concurrent
        # one that inserted first) or lost an invoice number race.
        stored = _stored_sales([*lost, *(parsed[index].id_text for index in refused)])
        inserted = [p for p in by_id if p.id not in lost] if lost else by_id
        for index, sale in fresh:
            p = prepared.get(index)
            if p is not None and p.id not in lost:
                results[index] = {"id": p.id, "status": "accepted", "flags": sorted(p.flags)}
            elif sale.id_text in stored:
                conflict = _replay_outcome(sale, stored[sale.id_text], terminal)
                if conflict:
                    reject(index, sale.raw, [conflict], sale.id_text)
                else:
                    results[index] = {"id": sale.id_text, "status": "duplicate", "flags": []}
            elif p is None:
                reject(index, sale.raw, refused[index], sale.id_text)
            else:
                invoice = sale.invoice
                error = _error(
                    "invalid_invoice_number", "invoice", f"El número {invoice.prefix}{invoice.number} ya fue usado."
                )
                reject(index, sale.raw, [error], sale.id_text)

        for index, first in repeats:
            sale, original = parsed[index], parsed[first]
            if sale.payload_hash != original.payload_hash:
                reject(index, sale.raw, [_replay_outcome(sale, ("", 0), terminal)], sale.id_text)
            elif results[first]["status"] == "rejected":
                reject(index, sale.raw, results[first]["errors"], sale.id_text)
            else:
                results[index] = {"id": sale.id_text, "status": "duplicate", "flags": results[first].get("flags", [])}

        _batch_children_insert(inserted)
        _resolutions_advance(inserted)
        _quarantine(terminal=terminal, batch=batch, received_at=received_at, rejected=rejected)
        _duplicate_flags_fill(results)
        counts = defaultdict(int)
        for result in results:
            counts[result["status"]] += 1
        UploadBatch.objects.filter(pk=batch.pk).update(
            accepted=counts["accepted"], duplicates=counts["duplicate"], rejected=counts["rejected"]
        )
        _reconcile_on_commit([p.id for p in inserted])

    return BatchResult(
        batch_id=str(batch_uuid),
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        results=results,
    )


def _duplicate_flags_fill(results: list[dict[str, Any]]) -> None:
    """A duplicate answers with the flags of the stored sale (reconciliation may have added some)."""
    ids = [r["id"] for r in results if r["status"] == "duplicate"]
    if not ids:
        return
    flags: dict[str, list[str]] = defaultdict(list)
    for sale_id, code in SaleFlag.objects.filter(sale_id__in=ids).order_by("code").values_list("sale_id", "code"):
        flags[str(sale_id)].append(code)
    for result in results:
        if result["status"] == "duplicate":
            result["flags"] = flags.get(result["id"], [])


# --- Online sales (§5) ---------------------------------------------------------------------


def sale_online_record(*, terminal: Terminal, sale: Any, received_at: datetime | None = None) -> OnlineResult:
    """Store one online sale after enforcing every rule, and apply its effects at once.

    Raises :class:`SaleRejected` (``422``, every error listed) when the sale is malformed,
    refers to unknown data, or breaks a rule (stock, block, daily maximum, balance plus
    overdraft, units, an invoice range that cannot number it); nothing is stored then
    (the sale did not happen, so it is not quarantined). Locks: the terminal's row and
    its node's (:func:`_terminal_hold`), then (``sales.locks``) the customer row, then the
    node-stock rows of its tracked products, by pk, so two sales of one customer or
    product are serialized and cannot together exceed what one of them would be refused.

    Invoicing (``billing.invoicing``): at node and institution level the server numbers
    the sale with :func:`~billing.invoicing.invoice_number_take` as the LAST write of the
    transaction, after every rule passed and every other row was written. So a rejected
    sale never consumes a number, a rollback gives it back, the resolution row lock (which
    serializes every online sale of that owner) is held for the shortest time, and it is
    always taken after the customer, node-stock and balance-feed locks — the same order as
    reconciliation, which locks resolutions last for deferred numbering (no deadlock
    cycle). At terminal level the register numbers the sale itself: the number is checked
    exactly as in a batch (own resolution, in range, valid on the sale's date, unused) and
    ``next_number`` moves past it. A terminal-level sale sent without a number is accepted
    unnumbered, as offline, unless the register's range could not have numbered it
    (exhausted, expired, missing): then it is refused with that code.

    Idempotent by sale id: the same sale again returns the stored one (``created=False``);
    the same id with other content raises ``conflict``. Side effects in the same
    transaction: the sale, lines, payments and flags; stock, balance and unit movements
    through the ledgers; its comanda (the kitchen sees an online sale at once, ``late``
    false); the resolution's ``next_number``; the terminal's ``last_seen_at``; on commit,
    reconciliation is enqueued (it computes the remaining effects and skips what is
    already there: movements, comanda, invoice).
    """
    received_at = received_at or timezone.now()
    if isinstance(sale, (dict, list)) and json_depth(sale) > MAX_REQUEST_DEPTH:
        raise SaleRejected([_error("malformed", "", "La venta está anidada a una profundidad inadmisible.")])
    parsed, errors = _sale_parse(sale, online=True)
    if errors:
        raise SaleRejected(errors)

    with transaction.atomic():
        _terminal_hold(terminal, received_at, upload=False)
        ctx = _context_load(terminal=terminal, sales=[parsed])
        customer = ctx.customers.get(parsed.customer_code) if parsed.customer_code else None
        tracked = [
            ctx.products[line.sku].pk
            for line in parsed.lines
            if line.sku in ctx.products and ctx.products[line.sku].tracks_inventory
        ]
        locked = sale_rows_lock(
            customer_id=customer.pk if customer else None, node_id=terminal.node_id, product_ids=tracked
        )
        # Looked up after the locks: a concurrent copy holding them has committed by now.
        stored = _stored_sales([parsed.id_text])
        if parsed.id_text in stored:
            return _online_replay(parsed, stored[parsed.id_text], terminal, sale_get_for_terminal)

        errors = _sale_check(parsed, ctx, online=True)
        invoice_error = _online_invoice_precheck(parsed, terminal)
        if errors:
            raise SaleRejected(errors + ([invoice_error] if invoice_error else []))
        facts_kwargs: dict[str, Any] = {"stock": locked.stock}
        if parsed.customer is not None:
            spent = Sale.objects.filter(customer_id=parsed.customer.pk, business_date=parsed.business_date).aggregate(
                total=Sum("total")
            )["total"]
            facts_kwargs.update(
                balance_before=locked.customer_balance,
                spent_today_before=spent or Decimal("0"),
                units_before=dict(
                    UnitBalance.objects.filter(customer_id=parsed.customer.pk).values_list("unit_type", "quantity")
                ),
            )
        breaches = sale_breaches(_sale_facts(parsed, ctx, **facts_kwargs))
        rejections = [_error(b.code, b.field, b.message) for b in breaches if b.code]
        if invoice_error:
            rejections.append(invoice_error)
        if rejections:
            raise SaleRejected(rejections)

        prepared = _prepare(parsed, ctx, flags=offline_flags(breaches), batch=None, received_at=received_at)
        if _sales_insert([prepared]):
            stored = _stored_sales([parsed.id_text])
            if parsed.id_text in stored:
                return _online_replay(parsed, stored[parsed.id_text], terminal, sale_get_for_terminal)
            raise SaleRejected(
                [_error("invalid_invoice_number", "invoice", "El número de factura ya fue usado por otra venta.")]
            )
        lines, payments = _children_insert([prepared])
        _effects_post(prepared, lines, payments)
        _resolutions_advance([prepared])
        _online_comanda_create(prepared, lines)
        # Last, see the docstring: after every other lock, held until commit.
        _online_invoice_assign(prepared, terminal)
        _reconcile_on_commit([parsed.id_text])
    return OnlineResult(created=True, sale=sale_get_for_terminal(terminal=terminal, sale_id=parsed.id))


def _server_numbers(terminal: Terminal) -> bool:
    return terminal.node.invoice_numbering_level in SERVER_NUMBERING_LEVELS


def _online_invoice_precheck(parsed: ParsedSale, terminal: Terminal) -> dict[str, str] | None:
    """The invoice breach of an online sale, if its numbering owner cannot number it today.

    Read-only (one query; none when the register sent its own number, which
    :func:`_invoice_check` validates). ``invoice_resolution_missing`` is kept as its own
    code rather than folded into ``invoice_range_exhausted``: staff fix the two
    differently (create a resolution vs. extend or replace one); the contract lists it
    among the server's additions.
    """
    if parsed.invoice is not None:
        return None
    error = invoice_unavailable_error(terminal=terminal, on=parsed.business_date)
    if error is None:
        return None
    return _error(error.code, "invoice", error.message)


def _online_invoice_assign(prepared: _Prepared, terminal: Terminal) -> None:
    """Number a stored online sale at node/institution level (no-op at terminal level).

    Must be the last write of the sale's transaction (see :func:`sale_online_record`).
    Raising :class:`SaleRejected` here rolls the whole sale back: that only happens when
    a concurrent sale took the last number after :func:`_online_invoice_precheck`.
    """
    if not _server_numbers(terminal):
        return
    sale = prepared.sale
    try:
        resolution, (number,) = invoice_number_take(terminal=terminal, on=sale.business_date)
    except InvoiceError as exc:
        raise SaleRejected([_error(exc.code, "invoice", exc.message)]) from exc
    Sale.objects.filter(pk=sale.id).update(
        invoice_resolution=resolution,
        invoice_prefix=resolution.prefix,
        invoice_number=number,
        invoice_source=InvoiceSource.SERVER,
    )


def _online_comanda_create(prepared: _Prepared, lines: list[SaleLine]) -> None:
    """The kitchen sees an online sale at once (DESIGN: comandas "appear at once").

    Same row reconciliation would create (``comandas_create`` is idempotent by sale), so
    reconciling the sale later finds it there. Quantities in the stored scale, as
    reconciliation reads them back.
    """
    products = {line.product.pk: line.product for line in prepared.parsed.lines}
    items = [
        (products[line.product_id].sku, products[line.product_id].name, line.quantity.quantize(MILLI))
        for line in lines
        if products[line.product_id].requires_preparation
    ]
    if not items:
        return
    sale = prepared.sale
    comandas_create(
        sales=[
            ComandaSale(
                sale_id=sale.id,
                node_id=sale.node_id,
                occurred_at=sale.occurred_at,
                received_at=sale.received_at,
                offline=sale.offline,
                items=items,
            )
        ]
    )


def _online_replay(parsed: ParsedSale, stored: tuple[str, int], terminal: Terminal, reader) -> OnlineResult:
    conflict = _replay_outcome(parsed, stored, terminal)
    if conflict:
        raise SaleRejected([conflict])
    return OnlineResult(created=False, sale=reader(terminal=terminal, sale_id=parsed.id))


def _effects_post(prepared: _Prepared, lines: list[SaleLine], payments: list[Payment]) -> None:
    """Post the online sale's stock, balance and unit movements through the same writers
    reconciliation uses (one definition of what a sale does to the ledgers); reconciling
    the sale later finds them there and appends nothing."""
    sale = prepared.sale
    products = {line.product.pk: line.product for line in prepared.parsed.lines}
    sale_stock_movements_append(
        lines=[
            SaleLineEffect(
                line_id=line.pk,
                sale_id=sale.pk,
                node_id=sale.node_id,
                product_id=line.product_id,
                quantity=line.quantity,
                occurred_at=sale.occurred_at,
            )
            for line in lines
            if products[line.product_id].tracks_inventory
        ]
    )

    def effects(method: str) -> list[SalePaymentEffect]:
        return [
            SalePaymentEffect(
                payment_id=payment.pk,
                sale_id=sale.pk,
                customer_id=sale.customer_id,
                amount=payment.amount,
                occurred_at=sale.occurred_at,
                unit_type=payment.unit_type,
            )
            for payment in payments
            if payment.method == method and payment.amount > 0
        ]

    sale_balance_movements_append(payments=effects(PaymentMethod.PAYGO))
    sale_unit_movements_append(payments=effects(PaymentMethod.UNITS))
