"""Load held: 20 terminals uploading for a bounded time against gunicorn + a celery worker,
while an admin browses the reports and their exports. No errors, no lost sales, ledgers clean."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.reliability.admin_session import AdminSession
from tests.reliability.conftest import rel_database
from tests.reliability.stack import CeleryWorker, TerminalClient, task_send, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

logging.getLogger("httpx").setLevel(logging.WARNING)

BATCHES = "/api/v1/pos/sales/batches"
TERMINALS = 20
LOAD_SECONDS = float(os.environ.get("PAYGO_REL_LOAD_SECONDS", "60"))
REPORTS = ["inventario-negativo", "excepciones-offline", "estado-sincronizacion", "sobregiros", "cuarentena"]

EXTRA_TERMINALS = """
import json
from nodes.keys import terminal_key_rotate
from nodes.models import Node, Terminal
node = Node.objects.get(code="N1")
keys = {}
for i in range(1, {count} + 1):
    code = f"N1-CARGA-{i:02d}"
    terminal, _ = Terminal.objects.get_or_create(code=code, defaults={"node": node, "name": code})
    keys[terminal.code] = terminal_key_rotate(terminal=terminal)
print(json.dumps(keys))
"""


def _load_terminals(rel_db, base_url: str) -> list[TerminalClient]:
    output = rel_db.manage("shell", "--no-imports", "-c", EXTRA_TERMINALS.replace("{count}", str(TERMINALS)))
    keys = json.loads(output.strip().splitlines()[-1])
    return [TerminalClient(code, key, base_url, seq=0) for code, key in sorted(keys.items())]


# Sales per second the lone worker must at least reconcile once the load stops (measured
# about 160/s when this test runs alone; see docs/reliability.md for why it is that low).
DRAIN_FLOOR = 50


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@pytest.fixture(scope="module")
def rel_db(tmp_path_factory):
    """A stack database of its own for the load scenario. The session's shared one holds
    what the crash and outage tests left: tens of thousands of sales of the same N1
    products, whose stock went negative long before and stays so. Reconciling on top of
    that history is a separate, known cost (docs/reliability.md, "Load held"); this test
    measures 20 terminals and an admin on a node's ordinary day."""
    yield from rel_database(tmp_path_factory, "rel-load")


def test_twenty_terminals_and_an_admin_for_a_minute(rel_db, rel_env, rel_broker_url, gunicorn_factory, tmp_path):
    server = gunicorn_factory(rel_env, workers=4)
    worker = CeleryWorker(rel_env, tmp_path / "worker.log")
    clients = _load_terminals(rel_db, server.url)
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    counts = {"requests": 0, "accepted": 0, "duplicates": 0, "resent_batches": 0}
    admin_pages: list[tuple[str, int, float]] = []

    def terminal(client: TerminalClient) -> None:
        rng = random.Random(client.code)
        sent: list[dict] = []
        with httpx.Client(base_url=server.url, headers=client.headers(), timeout=60) as http:
            while not stop.is_set():
                resend = sent and rng.random() < 0.1  # a lost reply: the same batch again
                body = rng.choice(sent) if resend else client.batch(rng.randint(1, 20), rng.randint(1, 3))
                started = time.monotonic()
                try:
                    response = http.post(BATCHES, json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{client.code}: {exc!r}")
                    continue
                elapsed = time.monotonic() - started
                with lock:
                    latencies.append(elapsed)
                    counts["requests"] += 1
                    if response.status_code != 200:
                        errors.append(f"{client.code}: {response.status_code} {response.text[:200]}")
                        continue
                    answer = response.json()
                    counts["accepted"] += answer["accepted"]
                    counts["duplicates"] += answer["duplicates"]
                    counts["resent_batches"] += bool(resend)
                    if answer["rejected"] or (resend and answer["duplicates"] != len(body["sales"])):
                        errors.append(f"{client.code}: unexpected {answer}")
                if not resend:
                    sent.append(body)
                time.sleep(rng.uniform(0.1, 0.5))

    def admin() -> None:
        session = AdminSession(server.url)
        try:
            user = rel_db.demo["admin"]
            assert session.login(user["username"], user["password"]).status_code == 302
            pages = ["/admin/", "/admin/reportes/"]
            for slug in REPORTS:
                pages += [f"/admin/reportes/{slug}/", f"/admin/reportes/{slug}/?format=csv"]
                pages += [f"/admin/reportes/{slug}/?format=xlsx"]
            pages += ["/admin/sales/sale/", "/admin/nodes/terminal/"]
            while not stop.is_set():
                for page in pages:
                    started = time.monotonic()
                    response = session.get(page)
                    with lock:
                        admin_pages.append((page, response.status_code, time.monotonic() - started))
                        if response.status_code != 200:
                            errors.append(f"admin {page}: {response.status_code}")
                    if stop.is_set():
                        break
        finally:
            session.close()

    try:
        with ThreadPoolExecutor(TERMINALS + 1) as pool:
            futures = [pool.submit(terminal, client) for client in clients] + [pool.submit(admin)]
            time.sleep(LOAD_SECONDS)
            stop.set()
            for future in futures:
                future.result(timeout=120)
        ids = [sale_id for client in clients for sale_id in client.sale_ids]
        assert not errors, errors[:20]
        assert rel_db.sale_counts(ids)[0] == len(ids) == counts["accepted"], "a sale was lost or doubled"
        # Whatever an overloaded moment left behind, the sweep enqueues again.
        task_send(rel_broker_url, "sales.tasks.unreconciled_sales_sweep")
        # The backlog must drain at no less than DRAIN_FLOOR sales/s (at least 180 s): the
        # bound follows what the terminals managed to upload, not a fixed guess.
        drain_bound = max(180.0, len(ids) / DRAIN_FLOOR)
        drain_started = time.monotonic()
        wait_until(
            lambda: (
                rel_db.scalar(
                    "SELECT count(*) FROM sales_sale WHERE id = ANY(%s::uuid[]) AND reconciled_at IS NULL", [ids]
                )
                == 0
            ),
            drain_bound,
            "the worker to reconcile the load",
            interval=0.5,
        )
        drained_in = time.monotonic() - drain_started
    finally:
        stop.set()
        worker.stop()
    assert "Sin diferencias" in rel_db.manage("verify_ledgers")
    admin_latencies = [seconds for _page, _status, seconds in admin_pages]
    print(
        f"load: {TERMINALS} terminals for {LOAD_SECONDS:.0f} s: {counts['requests']} uploads, "
        f"{len(ids)} sales accepted once, {counts['duplicates']} duplicates from {counts['resent_batches']} "
        f"resent batches, upload p95 {_p95(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"admin: {len(admin_pages)} pages/exports, p95 {_p95(admin_latencies) * 1000:.0f} ms; errors: {len(errors)}; "
        f"backlog reconciled {drained_in:.0f} s after the load stopped (bound {drain_bound:.0f} s)"
    )
