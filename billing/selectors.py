"""Reads of customer accounts: the balance feed terminals pull (``GET /pos/balances``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from django.core import signing
from django.db import connection
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from billing.models import BalanceFeed, Customer, ProductBlock, UnitBalance
from paygo.wire_format import money_str

BALANCES_DEFAULT_LIMIT = 5000
BALANCES_MAX_LIMIT = 20000

_CURSOR_SALT = "billing.balances.cursor"
_CURSOR_VERSION = 1
_CURSOR_MAX_LENGTH = 300


@dataclass(frozen=True)
class BalanceCursor:
    """A position in one institution's balance feed: the last (change_seq, id) served.

    ``snapshot`` marks the pages of a full snapshot still in progress, so each of them
    answers ``full: true`` until the last one.
    """

    institution_id: int
    epoch: int
    seq: int
    last_id: int
    snapshot: bool = False


def balance_cursor_encode(cursor: BalanceCursor) -> str:
    """Opaque to terminals: signed (URL-safe base64 + HMAC with the secret key), so a cursor
    cannot be forged or edited into another institution's feed."""
    payload = [
        _CURSOR_VERSION,
        cursor.institution_id,
        cursor.epoch,
        cursor.seq,
        cursor.last_id,
        int(cursor.snapshot),
    ]
    # A plain Signer (no timestamp): the same position always gives the same cursor.
    return signing.Signer(salt=_CURSOR_SALT).sign_object(payload)


def balance_cursor_decode(text: str) -> BalanceCursor | None:
    """The cursor in ``text``, or None for anything malformed, tampered with or foreign
    to this server (including one signed with a previous secret key)."""
    if not text or len(text) > _CURSOR_MAX_LENGTH:
        return None
    try:
        payload = signing.Signer(salt=_CURSOR_SALT).unsign_object(text)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        return None
    if not (
        isinstance(payload, list)
        and len(payload) == 6
        and payload[0] == _CURSOR_VERSION
        and all(type(value) is int and value >= 0 for value in payload[1:])
    ):
        return None
    _, institution_id, epoch, seq, last_id, snapshot = payload
    return BalanceCursor(institution_id, epoch, seq, last_id, bool(snapshot))


@dataclass(frozen=True)
class BalancesPage:
    """One page of the feed. ``customers_json`` is the page's ``customers`` array already
    in wire format (JSON, UTF-8): the view embeds it in the answer as it is."""

    full: bool
    cursor: str
    has_more: bool
    customers_json: bytes

    @property
    def customers(self) -> list[dict[str, Any]]:
        """The customers parsed back, for callers that want Python objects (tests, tools)."""
        return orjson.loads(self.customers_json)


def customer_balances_page(*, institution_id: int, cursor: str | None, limit: int) -> BalancesPage:
    """One page of the institution's balance feed after ``cursor`` (a full snapshot without one).

    **Order and paging.** Rows are served in keyset order ``(change_seq, id)`` strictly
    after the cursor's position; the next cursor is the last row served. A full snapshot
    is the same walk started at ``(0, 0)``, so it pages the same way and hands over to the
    delta with no gap. A customer changed while a terminal pages through moves to a
    higher ``change_seq`` and is served again later, with its newest state.

    **Why a reader never skips a commit** (DESIGN.md, "Delta feeds that skip commits").
    ``billing.feed.customers_touch`` takes the next sequence number with an UPDATE of the
    institution's ``BalanceFeed`` row, and that row lock is held until the writer's
    transaction ends. A second writer of the same institution blocks on that row and
    only gets its (higher) number after the first has committed or rolled back. So for
    any two committed touches, lower seq ⇒ committed earlier, and a transaction's changes
    become visible only when its seq is final. Our page is one SELECT, i.e. one snapshot
    (PostgreSQL READ COMMITTED takes it per statement; SQLite WAL per read transaction);
    if that snapshot shows a row at seq S, every transaction with a seq below S had
    committed before S was even assigned, so it is in the snapshot too. Hence every change
    at or below the returned cursor was visible when we read, and any change committed
    later has a seq above it. Rolled-back numbers are reused by the next writer, which is
    harmless because they were never visible. A writer's other statements in the same
    transaction (the balance UPDATE before the touch) become visible at the same commit.
    ``change_seq`` of a row only grows (each touch writes a larger number under the lock).
    Tested with two overlapping writers on PostgreSQL in
    ``tests/billing/test_api_balances.py``.

    **Unservable cursors.** A malformed or forged cursor, one from another institution,
    from another feed epoch (e.g. after a restore), or beyond the feed's last sequence
    gives a full snapshot (``full: true``), never an error.

    **Cost.** What changed, not the number of customers: one primary-key read of the
    feed row and one statement for the page. On PostgreSQL that statement is a range scan of
    ``customer_feed_idx`` (institution, change_seq, id) limited to ``limit + 1`` rows, with
    each served customer's blocks and units read by index in the same statement (so from
    the same snapshot), and it returns the page already written as the contract's JSON,
    which is passed through untouched: no Python object per customer. Elsewhere (SQLite)
    the page is read the same way and its blocks and units with one query each (by id),
    then written in Python; blocks and units read in later statements may be newer than
    the row, but any such change also bumped the customer's seq, so it is served again on
    the next pull. Both writers give the same bytes (tested on PostgreSQL).
    """
    epoch_default = BalanceFeed._meta.get_field("epoch").default
    epoch, last_seq = BalanceFeed.objects.filter(institution_id=institution_id).values_list(
        "epoch", "last_seq"
    ).first() or (epoch_default, 0)

    position = balance_cursor_decode(cursor) if cursor else None
    servable = (
        position is not None
        and position.institution_id == institution_id
        and position.epoch == epoch
        and position.seq <= last_seq
    )
    if servable:
        start_seq, start_id, full = position.seq, position.last_id, position.snapshot
    else:
        start_seq, start_id, full = 0, 0, True

    page_read = _page_read_sql if connection.vendor == "postgresql" else _page_read_python
    has_more, end, customers_json = page_read(
        institution_id=institution_id, start_seq=start_seq, start_id=start_id, limit=limit
    )
    end_seq, end_id = end or (start_seq, start_id)
    next_cursor = balance_cursor_encode(
        BalanceCursor(institution_id, epoch, end_seq, end_id, snapshot=full and has_more)
    )
    return BalancesPage(full=full, cursor=next_cursor, has_more=has_more, customers_json=customers_json)


# The whole page in one statement, written as the contract's JSON by PostgreSQL.
#
# - Keyset: ``(change_seq, id) > (s, i)`` as a row comparison, which PostgreSQL turns into a
#   start position in ``customer_feed_idx``; ``change_seq > s OR id > i`` would only be a
#   filter, so every page of a snapshot whose customers share one change_seq (never touched
#   since a bulk import) re-read all the rows of the pages before it (bench: the
#   100 000-customer snapshot was quadratic). ``change_seq >= s`` bounds the scan too.
# - The page is walked twice, both times in ``customer_feed_idx`` order; one statement sees
#   one snapshot, so both walks meet the same rows. ``keys`` takes only (id, change_seq) of
#   ``limit + 1`` rows (an index-only scan): the extra row tells whether there is more
#   (as one index scan: a separate probe after the last row was planned as a sequential
#   scan, its bounds being unknown), and each row carries its position ``n``
#   (``row_number()`` over the index order, so no sort), from which the page's ids and its
#   last row come. The second walk reads the ``limit`` rows served with their text. Keeping
#   the wide rows out of the materialized ``keys`` saved ~2 ms a 5,000-customer page.
# - Each customer's own fields come already written from ``feed_head``, a column PostgreSQL
#   generates in every write of the row (migration ``billing.0005_customer_feed_head``,
#   which says how it matches ``_page_read_python`` byte for byte): writing that text here
#   for every row served was a third of this statement's CPU.
# - The page's blocks and units are written once per customer that has any, as the text
#   between its ``"blocked_products":[`` and its closing ``}}``, into one jsonb object
#   (customer id → that text) which every row then looks up by key; a customer with
#   neither is not in it and gets the empty lists. One lookup a row, where one per table
#   (and the text between them) cost ~2 ms more a 5,000-customer page.
#   They are read by the page's span of ids when it is dense (``hi - lo < 4 × rows``, as a
#   snapshot's pages of customers never changed since their import are): one range scan
#   of each table's customer index, reading the entries of at most four times as many
#   customers as the page has (customers outside the page only add keys nobody looks up).
#   Otherwise (a delta, whose changed customers are scattered) with ``= ANY(page ids)``:
#   one index scan that looks up the page's ids in turn, one descent of the index per id,
#   ~4 ms a table for 5,000 ids, which the dense case saves. The two branches are gated on
#   ``dense``, evaluated once, so only one of them runs. ``IN (SELECT id …)`` was planned
#   as a nested loop of one bitmap scan per id, about twice the cost of ``= ANY``.
#   Joining the grouped blocks and units to the page directly leaves the join method to the
#   planner, which has no usable estimate here: it takes the row comparison for
#   ``change_seq > s`` alone, which on a freshly imported institution (every change_seq 0)
#   it estimates at one row, and it chose a nested loop that re-ran the units grouping for
#   every customer (over 3 s for one page). One correlated subquery per customer and table
#   was robust but cost about as much as writing the rest of the page.
# - The rows are aggregated in the order the second walk returns them, its ``ORDER BY``
#   (the index order, under a ``LIMIT``, so never a parallel or hashed plan that could
#   interleave them): an ``ORDER BY`` inside ``string_agg`` made PostgreSQL 15 sort the
#   5,000 written rows again (~2 ms), which is the order they already have. The
#   PostgreSQL-vs-Python byte-equality test pages through several customers in order.
# - Blocks and units are written as orjson writes ``_page_read_python``'s lists and maps
#   (compact separators, ``to_json(text)`` escaping as orjson does).
_PAGE_KEYSET = """FROM "billing_customer" c
    WHERE c.institution_id = %(institution_id)s
      AND c.change_seq >= %(start_seq)s
      AND (c.change_seq, c.id) > (%(start_seq)s, %(start_id)s)
    ORDER BY c.change_seq, c.id"""

_PAGE_EXTRAS_READ = """
        SELECT {columns} FROM "{table}"
        WHERE (SELECT dense FROM counted)
          AND customer_id BETWEEN (SELECT lo FROM counted) AND (SELECT hi FROM counted)
        UNION ALL
        SELECT {columns} FROM "{table}"
        WHERE NOT (SELECT dense FROM counted)
          AND customer_id = ANY ((SELECT ids FROM counted)::bigint[])
    """

_PAGE_SQL = f"""
WITH keys AS MATERIALIZED (
    SELECT c.id, c.change_seq, row_number() OVER (ORDER BY c.change_seq, c.id) AS n
    {_PAGE_KEYSET}
    LIMIT %(limit)s + 1
), served AS (
    SELECT count(*) AS rows, min(id) AS lo, max(id) AS hi, array_agg(id) AS ids
    FROM keys WHERE n <= %(limit)s
), counted AS (
    SELECT (SELECT count(*) FROM keys) AS rows, lo, hi, ids, coalesce(hi - lo < 4 * rows, false) AS dense
    FROM served
), blocks AS (
    SELECT b.customer_id, string_agg(to_json(p.sku)::text, ',' ORDER BY p.sku) AS skus
    FROM ({_PAGE_EXTRAS_READ.format(columns="customer_id, product_id", table="billing_productblock")}) b
    JOIN "inventory_product" p ON p.id = b.product_id
    GROUP BY b.customer_id
), units AS (
    SELECT u.customer_id,
           string_agg(to_json(u.unit_type)::text || ':' || u.quantity::text, ',' ORDER BY u.unit_type) AS held
    FROM ({_PAGE_EXTRAS_READ.format(columns="customer_id, unit_type, quantity", table="billing_unitbalance")}) u
    GROUP BY u.customer_id
), extras AS (
    SELECT jsonb_object_agg(customer_id::text, coalesce(skus, '') || '],"units":{{' || coalesce(held, ''))
           AS by_customer
    FROM blocks FULL JOIN units USING (customer_id)
), last AS (
    SELECT change_seq, id FROM keys WHERE n = (SELECT least(rows, %(limit)s) FROM counted)
)
SELECT
    (SELECT rows FROM counted) > %(limit)s,
    (SELECT change_seq FROM last),
    (SELECT id FROM last),
    '[' || coalesce(string_agg(
        s.feed_head || coalesce((SELECT by_customer FROM extras) ->> s.id::text, '],"units":{{') || '}}}}',
        ','
    ), '') || ']'
FROM (
    SELECT c.id, c.feed_head
    {_PAGE_KEYSET}
    LIMIT %(limit)s
) AS s
"""


class _Utf8Loader(Loader):
    """Text as the bytes PostgreSQL sent, UTF-8 (Django's connections use that client
    encoding). The page's JSON goes into the response as it is: decoding its ~1 MB into a
    str only for orjson to encode it back cost 1-3 ms of web CPU a page."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _page_read_sql(
    *, institution_id: int, start_seq: int, start_id: int, limit: int
) -> tuple[bool, tuple[int, int] | None, bytes]:
    """PostgreSQL: (has_more, (change_seq, id) of the last row served or None, customers JSON),
    all from one statement."""
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("text", _Utf8Loader)
        cursor.execute(
            _PAGE_SQL,
            {"institution_id": institution_id, "start_seq": start_seq, "start_id": start_id, "limit": limit},
        )
        has_more, end_seq, end_id, customers_json = cursor.fetchone()
    return has_more, (end_seq, end_id) if end_id is not None else None, customers_json


def _page_read_python(
    *, institution_id: int, start_seq: int, start_id: int, limit: int
) -> tuple[bool, tuple[int, int] | None, bytes]:
    """Any database: the page with the ORM, written in Python. Same result as ``_page_read_sql``."""
    # The keyset as a row comparison, as in ``_PAGE_SQL`` (SQLite supports row values since 3.15).
    rows = list(
        Customer.objects.filter(institution_id=institution_id, change_seq__gte=start_seq)
        .extra(
            where=['("billing_customer"."change_seq", "billing_customer"."id") > (%s, %s)'],
            params=[start_seq, start_id],
        )
        .order_by("change_seq", "pk")
        .values_list("pk", "change_seq", "code", "name", "balance", "overdraft_limit", "daily_max", "active")[
            : limit + 1
        ]
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    end = (rows[-1][1], rows[-1][0]) if rows else None
    return has_more, end, orjson.dumps(_customer_rows(rows))


def _customer_rows(rows: list[tuple]) -> list[dict[str, Any]]:
    """Customers in the contract's shape, with blocks and units fetched for the whole page
    at once (two queries, none when the page is empty)."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    blocked: dict[int, list[str]] = defaultdict(list)
    for customer_id, sku in (
        ProductBlock.objects.filter(customer_id__in=ids)
        .order_by("customer_id", "product__sku")
        .values_list("customer_id", "product__sku")
    ):
        blocked[customer_id].append(sku)
    units: dict[int, dict[str, int]] = defaultdict(dict)
    for customer_id, unit_type, quantity in (
        UnitBalance.objects.filter(customer_id__in=ids)
        .order_by("customer_id", "unit_type")
        .values_list("customer_id", "unit_type", "quantity")
    ):
        units[customer_id][unit_type] = quantity
    return [
        {
            "code": code,
            "name": name,
            "balance": money_str(balance),
            "overdraft_limit": money_str(overdraft_limit),
            "available": money_str(balance + overdraft_limit),
            "daily_max": money_str(daily_max) if daily_max is not None else None,
            "active": active,
            "blocked_products": blocked.get(pk, []),
            "units": units.get(pk, {}),
        }
        for pk, _seq, code, name, balance, overdraft_limit, daily_max, active in rows
    ]
