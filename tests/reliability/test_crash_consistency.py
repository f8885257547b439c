"""Crash consistency of uploads: the web process or the database goes away mid-request.

The worker-side crash (a celery worker SIGKILLed mid-reconcile, effects exactly once) is
covered by ``tests/sales/test_reconcile_worker.py``; this module covers the web side.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connections

from tests.reliability.stack import TerminalClient, assert_error_shape, pg_restart, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

logging.getLogger("httpx").setLevel(logging.WARNING)

BATCHES = "/api/v1/pos/sales/batches"
BIG_BATCH_SALES, LINES_PER_SALE = 500, 5


def _upload(url: str, client: TerminalClient, body: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(url + BATCHES, json=body, headers=client.headers(), timeout=timeout)


def _upload_in_background(url: str, client: TerminalClient, body: dict) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["response"] = _upload(url, client, body)
        except httpx.HTTPError as exc:  # the connection died with the server: expected
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _ingest_transaction_writing(rel_db) -> bool:
    """True while an upload transaction of the stack's database has written rows."""
    return bool(
        rel_db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_xid IS NOT NULL "
            "AND xact_start < now() - interval '1 millisecond' AND query NOT ILIKE '%%nodes_terminal%%'",
            [rel_db.name],
        )
    )


def _assert_all_or_nothing(rel_db, sale_ids: list[str]) -> str:
    wait_until(lambda: rel_db.open_transactions() == 0, 30, "the killed worker's session to end")
    counts = rel_db.sale_counts(sale_ids)
    full = (len(sale_ids), len(sale_ids) * LINES_PER_SALE, len(sale_ids))
    assert counts in {(0, 0, 0), full}, f"partial batch stored: {counts}"
    return "all" if counts == full else "none"


def _retry_completes(url: str, client: TerminalClient, body: dict, rel_db) -> dict:
    response = _upload(url, client, body)
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    assert answer["accepted"] + answer["duplicates"] == len(body["sales"]), answer
    assert answer["rejected"] == 0
    ids = [sale["id"] for sale in body["sales"]]
    assert rel_db.sale_counts(ids) == (len(ids), len(ids) * LINES_PER_SALE, len(ids))
    return answer


@pytest.mark.parametrize("kill", ["worker_while_writing", "whole_gunicorn_midway", "worker_near_the_end"])
def test_killed_web_server_stores_a_batch_whole_or_not_at_all(rel_db, rel_env, gunicorn_factory, terminals, kill):
    server = gunicorn_factory(rel_env, workers=1)
    client = TerminalClient("N1-CAJA-01", terminals["N1-CAJA-01"], server.url, seq=10_000 * (1 + len(kill)))

    # Baseline: how long a 500-sale, 2500-line batch takes here (also warms the worker up).
    warm = client.batch(BIG_BATCH_SALES, LINES_PER_SALE)
    started = time.monotonic()
    assert _upload(server.url, client, warm).status_code == 200
    baseline = time.monotonic() - started

    body = client.batch(BIG_BATCH_SALES, LINES_PER_SALE)
    ids = [sale["id"] for sale in body["sales"]]
    thread, outcome = _upload_in_background(server.url, client, body)
    if kill == "worker_while_writing":
        wait_until(lambda: _ingest_transaction_writing(rel_db), 60, "the batch transaction to write", interval=0.002)
        assert server.kill_workers()
    elif kill == "whole_gunicorn_midway":
        time.sleep(baseline * 0.5)
        server.kill_all()
    else:
        time.sleep(baseline * 0.95)
        assert server.kill_workers()
    thread.join(timeout=130)
    assert not thread.is_alive(), "the client hung after the server died"

    stored = _assert_all_or_nothing(rel_db, ids)
    if kill == "worker_while_writing":
        assert "response" not in outcome, "the kill should land before the answer"
        assert stored == "none", "killed inside the transaction: nothing may be committed"

    if kill == "whole_gunicorn_midway":
        server = gunicorn_factory(rel_env, workers=1, name="gunicorn-restarted")
    else:  # the master forks a new worker
        wait_until(lambda: server.worker_pids(), 30, "a new gunicorn worker")
    answer = _retry_completes(server.url, client, body, rel_db)
    print(
        f"{kill}: baseline {baseline:.2f} s; after the kill {stored} of the batch was stored; "
        f"retry accepted {answer['accepted']}, duplicates {answer['duplicates']}"
    )


def test_postgres_restart_during_uploads_gives_503_in_the_shape_and_loses_nothing(
    rel_db, rel_env, gunicorn_factory, terminals
):
    server = gunicorn_factory(rel_env, workers=3)
    clients = [
        TerminalClient(code, terminals[code], server.url, seq=500_000)
        for code in ("N1-CAJA-01", "N1-CAJA-02", "N1-KIOSCO-01")
    ]
    restart_done = threading.Event()
    stop = threading.Event()
    log: list[tuple[str, int | str, float, float]] = []  # terminal, status, started, seconds
    lock = threading.Lock()

    def terminal_loop(client: TerminalClient) -> None:
        with httpx.Client(base_url=server.url, headers=client.headers(), timeout=30) as http:
            while not stop.is_set():
                body = client.batch(100, 2)
                for _attempt in range(200):  # the terminal retries the same batch until it is stored
                    started = time.monotonic()
                    try:
                        response = http.post(BATCHES, json=body)
                        status: int | str = response.status_code
                    except httpx.HTTPError as exc:
                        response, status = None, type(exc).__name__
                    with lock:
                        log.append((client.code, status, started, time.monotonic() - started))
                    if response is not None and response.status_code == 200:
                        break
                    if response is not None:
                        assert response.status_code >= 500, response.text[:300]
                        error = assert_error_shape(response)
                        assert error["code"] in {"service_unavailable", "server_error"}, error
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"{client.code}: batch never stored")

    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            futures = [pool.submit(terminal_loop, client) for client in clients]
            time.sleep(3)
            booted = rel_db.scalar("SELECT pg_postmaster_start_time()")
            restart_started = time.monotonic()
            restart_seconds = pg_restart()
            restart_done.set()
            restart_finished = time.monotonic()
            time.sleep(5)
            stop.set()
            for future in futures:
                future.result(timeout=120)
    finally:
        stop.set()
        connections.close_all()  # the test process's own sessions died with the restart

    assert rel_db.scalar("SELECT pg_postmaster_start_time()") > booted, "PostgreSQL did not restart"
    statuses = [status for _code, status, _started, _seconds in log]
    failures = [entry for entry in log if entry[1] != 200]
    assert statuses.count(200) > 0
    assert max(seconds for *_rest, seconds in log) < 30, "a request hung"
    # Only requests in flight during the restart fail; afterwards every worker reconnects
    # at once (CONN_HEALTH_CHECKS), so nothing started a second after it finished fails.
    late_failures = [entry for entry in failures if entry[2] > restart_finished + 1]
    assert not late_failures, late_failures
    ids = [sale_id for client in clients for sale_id in client.sale_ids]
    assert rel_db.sale_counts(ids) == (len(ids), 2 * len(ids), len(ids)), "a sale was lost or doubled"
    during = [entry for entry in failures if restart_started - 1 <= entry[2] <= restart_finished]
    print(
        f"restart took {restart_seconds:.2f} s; {len(log)} requests, {len(failures)} failed "
        f"({sorted({str(s) for s in statuses if s != 200})}), {len(during)} of them during the restart; "
        f"{len(ids)} sales stored exactly once"
    )
