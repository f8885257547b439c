"""Redis (the Celery broker) down or frozen: uploads still succeed quickly and durably; when
it returns, the sweep and a worker reconcile everything."""

from __future__ import annotations

import logging
import os
import signal
import time

import httpx
import pytest

from tests.reliability.stack import CeleryWorker, RedisServer, TerminalClient, production_env, task_send, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

logging.getLogger("httpx").setLevel(logging.WARNING)

BATCHES = "/api/v1/pos/sales/batches"
# Publishing is bounded by CELERY_BROKER_TRANSPORT_OPTIONS (one retry, 2 s socket timeout)
# and CELERY_TASK_PUBLISH_RETRY=False; this bound is deliberately generous.
UPLOAD_LATENCY_LIMIT = 10.0


def _timed_upload(server, client: TerminalClient, sales: int = 50) -> float:
    body = client.batch(sales, 2)
    started = time.monotonic()
    response = httpx.post(server.url + BATCHES, json=body, headers=client.headers(), timeout=60)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text[:500]
    assert response.json()["accepted"] == sales
    return elapsed


def test_uploads_survive_a_broker_outage_and_the_sweep_catches_up(rel_db, gunicorn_factory, terminals, tmp_path):
    broker = RedisServer(tmp_path)
    worker = None
    env = production_env(rel_db.url, static_root=rel_db.static_root, CELERY_BROKER_URL=broker.url)
    try:
        server = gunicorn_factory(env, workers=2)
        client = TerminalClient("N1-CAJA-02", terminals["N1-CAJA-02"], server.url, seq=900_000)
        latencies: dict[str, list[float]] = {"up": [], "down": [], "frozen": []}
        latencies["up"] += [_timed_upload(server, client) for _ in range(2)]  # pooled broker connections

        broker.stop()  # refused connections
        latencies["down"] += [_timed_upload(server, client) for _ in range(4)]

        broker.start()
        latencies["up"].append(_timed_upload(server, client))
        os.kill(broker.process.pid, signal.SIGSTOP)  # accepts TCP, never answers: timeouts must bite
        try:
            latencies["frozen"] += [_timed_upload(server, client) for _ in range(2)]
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        broker.stop()
        broker.start()  # back, empty: every message published before is gone

        worst = {phase: max(values) for phase, values in latencies.items()}
        assert worst["down"] < UPLOAD_LATENCY_LIMIT, worst
        assert worst["frozen"] < UPLOAD_LATENCY_LIMIT, worst
        ids = client.sale_ids
        assert rel_db.sale_counts(ids) == (len(ids), 2 * len(ids), len(ids)), "an upload was not durable"
        unreconciled = rel_db.scalar(
            "SELECT count(*) FROM sales_sale WHERE id = ANY(%s::uuid[]) AND reconciled_at IS NULL", [ids]
        )
        assert unreconciled > 0  # the outage really kept messages from the workers

        worker_env = {**env, "PAYGO_SWEEP_MIN_AGE_SECONDS": "0", "PAYGO_LOG_LEVEL": "INFO"}
        worker = CeleryWorker(worker_env, tmp_path / "worker.log")
        task_send(broker.url, "sales.tasks.unreconciled_sales_sweep")
        wait_until(
            lambda: (
                rel_db.scalar(
                    "SELECT count(*) FROM sales_sale WHERE id = ANY(%s::uuid[]) AND reconciled_at IS NULL", [ids]
                )
                == 0
            ),
            240,
            "the sweep and the worker to reconcile every sale",
            interval=0.5,
        )
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
    verification = rel_db.manage("verify_ledgers")
    assert "Sin diferencias" in verification
    print(
        f"broker outage: {len(ids)} sales; worst upload latency up {worst['up']:.2f} s, "
        f"down {worst['down']:.2f} s, frozen {worst['frozen']:.2f} s; {unreconciled} waited for the sweep; "
        "all reconciled, ledgers clean"
    )
