"""Whatever a client sends, the answer is a 2xx or a 4xx in the error shape, never a 500,
and every sale object that carried an id is stored, a duplicate, or quarantined."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sales.ingest import (
    CENT,
    _Errors,
    _payment_parse,
    _payment_parse_checked,
    _sale_depth,
    json_depth,
    quarantine_payload_decode,
)
from sales.models import QuarantinedSale, Sale
from tests.sales.payloads import BATCHES_URL, ONLINE_URL, assert_error_shape, batch, sale

pytestmark = pytest.mark.django_db


def _post_raw(client, url, body: bytes):
    return client.generic("POST", url, body, content_type="application/json")


def _assert_answer_in_contract(response):
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert_error_shape(response)


def _nested(depth: int):
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"null",
        b'{"batch_id": NaN, "sales": []}',
        b'{"batch_id": "x", "sales": [Infinity]}',
        b"[" * 2000 + b"]" * 2000,
        orjson.dumps({"batch_id": str(uuid.uuid4()), "sales": [_nested(200)]}),
        b'{"batch_id": "\\u0000", "sales": []}',
        b"\xff\xfe\x00",
        b'{"batch_id": "' + str(uuid.uuid4()).encode() + b'", "sales": [' + b"1" * 5000 + b"]}",
    ],
)
def test_hostile_bodies_get_4xx_in_the_error_shape(pos_client, body):
    for url in (BATCHES_URL, ONLINE_URL):
        response = _post_raw(pos_client(), url, body)
        _assert_answer_in_contract(response)
        assert response.status_code >= 400


@pytest.mark.parametrize(
    "changes",
    [
        {"seq": 10**30},
        {"seq": -1},
        {"seq": True},
        {"occurred_at": "0001-01-01T00:00:00+14:00"},
        {"occurred_at": "9999-12-31T23:59:59-14:00"},
        {"occurred_at": "２０２６-11-28T12:01:02-05:00"},
        {"occurred_at": 1764349262},
        {"occurred_at": "2026-11-28T12:01:02\u0000-05:00"},  # fromisoformat alone skips the NUL
        {"occurred_at": "20261128T120102-0500"},  # basic ISO 8601, not RFC 3339
        {"customer": {"code": "C-000123"}},
        {"customer": "C" * 500},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "9" * 50, "unit_price": "9" * 50}]},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "99999999999.999", "unit_price": "999999999999.99"}]},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "1e3", "unit_price": "3500.00"}]},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "NaN", "unit_price": "3500.00"}]},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "٢", "unit_price": "3500.00"}]},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": 2**70, "unit_price": "3500.00"}]},
        {"lines": [["SKU-EMPANADA", "2", "3500.00"]]},
        {"lines": "SKU-EMPANADA"},
        {"lines": [{"sku": "SKU-EMPANADA", "quantity": "1", "unit_price": "1.00"}] * 1000},
        {"payments": None},
        {"payments": [{"method": "units", "amount": "1.5", "unit_type": "ALMUERZO"}]},
        {"payments": [{"method": "units", "amount": "99999999999", "unit_type": "ALMUERZO"}]},
        {"invoice": {"prefix": "FE", "number": 2**64, "resolution": "x"}},
        {"invoice": "FE-1"},
        {"known_balance": "-" + "9" * 40},
        {"id": "\u0000" * 10},
        {"id": "\u0430" * 8 + "-0000-4000-8000-000000000000"},  # Cyrillic "а", not hex "a"
        {"deep": _nested(40)},
        {"customer": "C-000123\u0000", "🙂": "\u0000", "\u0000": 1},
    ],
)
def test_hostile_sales_are_rejected_and_quarantined_never_a_500(pos_client, changes):
    bad = sale(**changes)
    response = pos_client().post(BATCHES_URL, batch(bad), format="json")
    _assert_answer_in_contract(response)
    result = response.json()["results"][0]
    assert result["status"] == "rejected", result
    assert result["errors"][0]["code"] == "malformed"
    # What the server received: orjson reads integers beyond 64 bits as floats.
    received = orjson.loads(json.dumps(bad))
    assert [quarantine_payload_decode(q.raw_payload) for q in QuarantinedSale.objects.all()] == [received]
    online = pos_client().post(ONLINE_URL, {**bad, "offline": False}, format="json")
    assert_error_shape(online, 422)


def test_unknown_extra_fields_are_ignored_even_with_nul_bytes(pos_client):
    # The contract grows by adding optional fields; a terminal newer than the server still syncs.
    body = sale(**{"🙂": "\u0000\u0000", "\u0000": 1})
    result = pos_client().post(BATCHES_URL, batch(body), format="json").json()["results"][0]
    assert result["status"] == "accepted"


# --- Property: arbitrary JSON ------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
valid_ids = st.uuids().map(str)


@st.composite
def sale_objects(draw):
    """Mostly sale-like objects: a valid sale with some fields replaced by arbitrary JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    body = sale(id=draw(valid_ids | st.sampled_from(["", "x", str(uuid.UUID(int=1))]) | json_scalars))
    keys = ["seq", "occurred_at", "offline", "customer", "lines", "payments", "invoice", "known_balance"]
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        body[key] = draw(json_values)
    if draw(st.booleans()):
        body["lines"] = [
            {
                "sku": draw(st.sampled_from(["SKU-EMPANADA", "SKU-JUGO", "AND-CAFE"]) | st.text(max_size=5)),
                "quantity": draw(st.sampled_from(["1", "0", "-1", "0.001", "2.5"]) | json_scalars),
                "unit_price": draw(st.sampled_from(["3500.00", "0.00", "1.005"]) | json_scalars),
            }
        ]
    return body


bodies = st.fixed_dictionaries(
    {"batch_id": valid_ids, "sales": st.lists(sale_objects(), max_size=6)}
) | json_values.map(lambda v: {"batch_id": str(uuid.uuid4()), "sales": v})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_arbitrary_json_never_breaks_the_batch_endpoint_and_loses_nothing(pos_client, body):
    response = _post_raw(pos_client(), BATCHES_URL, orjson.dumps(body))
    _assert_answer_in_contract(response)
    if response.status_code != 200:
        assert response.status_code in (400, 413)
        return
    results = response.json()["results"]
    assert len(results) == len(body["sales"])
    for sent, result in zip(body["sales"], results, strict=True):
        if result["status"] in ("accepted", "duplicate"):
            assert Sale.objects.filter(pk=sent["id"]).exists()
        else:
            assert result["status"] == "rejected"
            assert result["errors"]
            sale_id = sent.get("id") if isinstance(sent, dict) else None
            key = str(sale_id)[:64] if isinstance(sale_id, (str, int)) and not isinstance(sale_id, bool) else ""
            kept = [
                quarantine_payload_decode(q)
                for q in QuarantinedSale.objects.filter(sale_id=key.replace("\x00", "\ufffd")).values_list(
                    "raw_payload", flat=True
                )
            ]
            assert sent in kept


def _depth_by_walking_everything(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return deepest


nested_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=nested_values, limit=st.integers(1, 8))
def test_json_depth_is_exact_up_to_its_limit_and_says_too_deep_beyond(value, limit):
    expected = _depth_by_walking_everything(value)
    measured = json_depth(value, limit)
    if expected <= limit:
        assert measured == expected
    else:
        assert measured > limit


sale_like_values = st.dictionaries(
    st.text(max_size=3),
    nested_values
    | st.floats(allow_nan=False)
    | st.lists(st.dictionaries(st.text(max_size=3), nested_values, max_size=4), max_size=4),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(value=sale_like_values | nested_values)
def test_sale_depth_short_path_equals_json_depth(value):
    # The envelope measures each sale with the short path for the usual shape.
    assert _sale_depth(value) == json_depth(value)


payments_like = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["paygo", "cash", "card", "units", "PAYGO", "bitcoin", 1, None]),
        "amount": st.sampled_from(["0", "0.00", "7000.00", "7000.0", "-1.00", "1.234", "1e3", " 5", "", "\u0663"])
        | st.integers(-5, 10**13)
        | st.floats(allow_nan=False)
        | st.none(),
    },
    optional={"unit_type": st.sampled_from(["ALMUERZO", "", None, 3])},
)


@settings(max_examples=300, deadline=None)
@given(payment=payments_like)
def test_payment_short_path_agrees_with_the_full_checks(payment):
    # A payment parsed again (its amount text now remembered) parses exactly as the full
    # checks parse it: same errors, same values, and the payload hash's text of the amount.
    full_errors, first_errors, again_errors = _Errors(), _Errors(), _Errors()
    full = _payment_parse_checked(payment, 0, full_errors)
    first = _payment_parse(payment, 0, first_errors)
    again = _payment_parse(dict(payment), 0, again_errors)
    assert full_errors == first_errors == again_errors
    for parsed in (first, again):
        if full is None:
            assert parsed is None
            continue
        assert (parsed.method, str(parsed.amount), parsed.unit_type) == (
            full.method,
            str(full.amount),
            full.unit_type,
        )
        assert parsed.hash_text in (None, str(full.amount.quantize(CENT)))


def test_json_depth_stops_at_its_limit_on_absurd_nesting():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep, 64) == 65
