"""HTTP behaviour against contract answers emulated with httpx.MockTransport."""

import random

import httpx
import pytest

from simulator.client import ApiRefused, Offline, PosClient, RetryPolicy, Unreachable
from simulator.wire import ApiError


def _client(handler, **kwargs):
    return PosClient(
        base_url="http://backoffice.test",
        key="k",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02),
        sleep=lambda _: None,
        **kwargs,
    )


def _flaky(failures):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) <= len(failures):
            failure = failures[len(calls) - 1]
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, json={"error": {"code": "server_error", "message": "x", "details": {}}})
        return httpx.Response(200, json={"batch_id": "b", "accepted": 1, "duplicates": 0, "rejected": 0, "results": []})

    return handler, calls


@pytest.mark.parametrize(
    "failures",
    [
        [httpx.ReadTimeout("slow")],
        [httpx.ConnectError("refused")],
        [503, 500],
        [httpx.ReadTimeout("slow"), 502, httpx.ConnectTimeout("x")],
    ],
)
def test_timeouts_connection_errors_and_5xx_are_retried(failures):
    handler, calls = _flaky(failures)
    client = _client(handler)
    answer = client.batch_post({"batch_id": "b", "sales": []})
    assert answer.status == 200
    assert len(calls) == len(failures) + 1
    assert client.stats.retries == len(failures)


def test_retries_are_bounded():
    handler, calls = _flaky([503] * 10)
    client = _client(handler)
    with pytest.raises(Unreachable):
        client.batch_post({"batch_id": "b", "sales": []})
    assert len(calls) == 4


def test_4xx_is_an_answer_not_retried_and_its_error_shape_is_parsed():
    def handler(request):
        return httpx.Response(
            422,
            json={
                "error": {
                    "code": "insufficient_balance",
                    "message": "Saldo insuficiente",
                    "details": {"errors": [{"code": "insufficient_balance"}, {"code": "product_blocked"}]},
                }
            },
        )

    client = _client(handler)
    answer = client.sale_post({"id": "x"})
    assert answer.status == 422
    assert answer.error.code == "insufficient_balance"
    assert answer.error.rule_codes == ["insufficient_balance", "product_blocked"]
    assert client.stats.requests == 1


def test_reads_raise_the_contract_error():
    client = _client(lambda r: httpx.Response(401, json={"error": {"code": "authentication_failed", "message": "no"}}))
    with pytest.raises(ApiRefused) as caught:
        client.config()
    assert caught.value.error == ApiError(401, "authentication_failed", "no", {})


def test_error_without_the_contract_shape_still_has_a_code():
    assert ApiError.from_body(502, "<html>").code == "http_502"


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = policy.delay(attempt, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_nothing_is_sent_while_offline():
    calls = []
    client = _client(lambda r: calls.append(r) or httpx.Response(200, json={}), is_online=lambda: False)
    with pytest.raises(Offline):
        client.sale_post({"id": "x"})
    assert calls == []


def test_bearer_key_and_balance_pages_follow_the_cursor():
    seen = []

    def handler(request):
        seen.append((request.headers["authorization"], request.url.params.get("cursor")))
        more = request.url.params.get("cursor") is None
        return httpx.Response(200, json={"full": True, "cursor": "c1", "has_more": more, "customers": []})

    pages = list(_client(handler).balances_pages(None))
    assert len(pages) == 2
    assert seen == [("Bearer k", None), ("Bearer k", "c1")]
