"""HTTP client of one terminal: the endpoints of the contract, bounded retries with
exponential backoff, and the deliberate faults of ``--chaos``.

Only requests that are safe to repeat are retried: reads, and sale posts (a sale is
idempotent by its id, a batch by the ids of its sales). A 4xx is an answer, never retried.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.wire import ApiError

API = "/api/v1"
CHAOS_READ_TIMEOUT = 0.001  # seconds: the request reaches the server, the answer is "lost"


class Offline(Exception):
    """The terminal has no connection (a simulated outage): nothing was sent."""


class Unreachable(Exception):
    """Every attempt failed (timeouts, connection errors, 5xx); the caller keeps its data."""

    def __init__(self, what: str, last: str) -> None:
        super().__init__(f"{what}: {last}")
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 3.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter, capped; ``attempt`` counts from 1."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng.random() * ceiling / 2


@dataclass
class Chaos:
    """Deliberate faults: lost answers, repeated batches, split and reordered batches."""

    timeout_rate: float = 0.15
    resend_rate: float = 0.2
    enabled: bool = True


@dataclass
class Response:
    status: int
    body: Any

    @property
    def error(self) -> ApiError:
        return ApiError.from_body(self.status, self.body)


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    chaos_timeouts: int = 0
    failures: Counter = field(default_factory=Counter)  # "timeout", "connect", "http_503", ...


class PosClient:
    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        chaos: Chaos | None = None,
        rng: random.Random | None = None,
        is_online: Callable[[], bool] = lambda: True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.chaos = chaos
        # Its own generator, so chaos and jitter never shift the sales a seed produces.
        self.rng = rng or random.Random()
        self.is_online = is_online
        self.sleep = sleep
        self.stats = TransportStats()

    def close(self) -> None:
        self.http.close()

    # -- transport -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None, chaos: bool = False) -> Response:
        """Send with bounded retries on timeouts, connection errors and 5xx.

        With ``chaos`` (and ``--chaos`` on) some attempts use a tiny read timeout on
        purpose: the server gets the request and answers, the terminal never hears it and
        sends again, as after a lost reply in the field.
        """
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            if not self.is_online():
                raise Offline(path)
            timeout: httpx.Timeout | float = self.timeout
            if chaos and self.chaos and self.chaos.enabled and self.rng.random() < self.chaos.timeout_rate:
                timeout = httpx.Timeout(self.timeout, read=CHAOS_READ_TIMEOUT)
                self.stats.chaos_timeouts += 1
            self.stats.requests += 1
            try:
                answer = self.http.request(method, path, json=json, params=params, timeout=timeout)
            except httpx.TimeoutException:
                last = "timeout"
            except httpx.TransportError as exc:
                last = f"connect: {type(exc).__name__}"
            else:
                if answer.status_code < 500:
                    return Response(answer.status_code, _json(answer))
                last = f"http_{answer.status_code}"
            self.stats.failures[last.split(":")[0]] += 1
            if attempt < self.retry.attempts:
                self.stats.retries += 1
                self.sleep(self.retry.delay(attempt, self.rng))
        raise Unreachable(f"{method} {path}", last)

    # -- the contract's endpoints ----------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return self._ok(self.request("GET", f"{API}/pos/config"))

    def catalog(self) -> list[dict[str, Any]]:
        body = self._ok(self.request("GET", f"{API}/pos/catalog"))
        if isinstance(body, dict):
            body = body.get("products", body.get("results", []))
        return list(body)

    def balances_pages(self, cursor: str | None, *, limit: int | None = None):
        """Yield the pages of one pull of the balance feed (full without a cursor)."""
        while True:
            params: dict[str, Any] = {}
            if cursor:
                params["cursor"] = cursor
            if limit:
                params["limit"] = limit
            page = self._ok(self.request("GET", f"{API}/pos/balances", params=params))
            yield page
            cursor = page.get("cursor") or cursor
            if not page.get("has_more"):
                return

    def sale_post(self, sale: dict[str, Any]) -> Response:
        return self.request("POST", f"{API}/pos/sales", json=sale, chaos=True)

    def batch_post(self, batch: dict[str, Any]) -> Response:
        return self.request("POST", f"{API}/pos/sales/batches", json=batch, chaos=True)

    def sale_get(self, sale_id: str) -> Response:
        return self.request("GET", f"{API}/pos/sales/{sale_id}")

    def heartbeat(self, body: dict[str, Any]) -> Response:
        return self.request("POST", f"{API}/pos/heartbeat", json=body)

    @staticmethod
    def _ok(response: Response) -> Any:
        if response.status >= 400:
            error = response.error
            raise ApiRefused(error)
        return response.body


class ApiRefused(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(f"{error.status} {error.code}: {error.message}")
        self.error = error


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None
