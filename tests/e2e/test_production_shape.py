"""The back office in its production shape, for real: gunicorn with 3 workers, two Celery
worker processes and celery beat (django-celery-beat's database scheduler) on a fresh
PostgreSQL database and Redis, with DEBUG off; the terminal simulator (a separate process,
a pure HTTP client) sells through an Internet outage with ``--chaos`` against it.

Nothing here uses the pytest test database: the test creates its own database on the
PostgreSQL server of ``DATABASE_URL`` (``paygo_e2e_<random>``) and uses its own Redis
database numbers on ``PAYGO_TEST_REDIS_URL``; it drops and flushes them at the end, and
stops every process it started, by PID. Every wait is bounded; the whole run stays well
under five minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PROJECT = Path(settings.BASE_DIR)
BROKER_DB, CACHE_DB = 7, 8  # our own Redis database numbers (other tests use 3)
BUDGET_SECONDS = 280
TERMINALS = ["N1-CAJA-01", "N1-CAJA-02", "N1-KIOSCO-01", "N2-CAJA-01", "N3-CAJA-01"]


class Deadline:
    """One time budget for the whole test; every step waits at most what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            pytest.fail("the production-shape run went over its time budget")
        return min(cap, left)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class Processes:
    """Long-running processes this test started, each in its own session (process group),
    stopped by PID: SIGTERM, a bounded wait, then SIGKILL of that process's own group."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, args: list[str]) -> Path:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, process, log))
        return log

    def assert_alive(self) -> None:
        for name, process, log in self.started:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{_tail(log)}")

    def stop_all(self) -> None:
        for _, process, _ in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process, _ in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            # Its group is the session it leads (start_new_session): worker children too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{_tail(log)}" for name, _, log in self.started)


def _manage(env: dict[str, str], workdir: Path, deadline: Deadline, *args: str, cap: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline.left(cap),
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _wait_for(what: str, check, deadline: Deadline, processes: Processes, cap: float = 60) -> None:
    until = time.monotonic() + deadline.left(cap)
    while time.monotonic() < until:
        processes.assert_alive()
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{processes.logs()}")


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def e2e_database():
    """A fresh database on the PostgreSQL server of DATABASE_URL; dropped afterwards."""
    server = os.environ["DATABASE_URL"]
    name = f"paygo_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(server, dbname="postgres", autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, dbname="postgres", autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def e2e_redis():
    """Our own Redis database numbers for the broker and the cache; flushed before and after."""
    import redis

    base = os.environ["PAYGO_TEST_REDIS_URL"].rstrip("/")
    urls = {"broker": f"{base}/{BROKER_DB}", "cache": f"{base}/{CACHE_DB}"}
    clients = [redis.Redis.from_url(url, socket_timeout=5) for url in urls.values()]
    for client in clients:
        client.flushdb()
    try:
        yield urls
    finally:
        for client in clients:
            client.flushdb()
            client.close()


def test_gunicorn_workers_and_beat_survive_an_outage_with_chaos(e2e_database, e2e_redis, tmp_path):
    deadline = Deadline(BUDGET_SECONDS)
    # Production-like environment: nothing inherited from the test settings.
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAYGO_", "CELERY_", "DATABASE_URL"))
    }
    env = {
        **inherited,
        "PYTHONPATH": str(PROJECT),
        "DJANGO_SETTINGS_MODULE": "paygo.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": e2e_database,
        "CELERY_BROKER_URL": e2e_redis["broker"],
        "PAYGO_CACHE_URL": e2e_redis["cache"],
        "PAYGO_SWEEP_SECONDS": "3",
    }
    demo_file, record_file = tmp_path / "demo.json", tmp_path / "sales.jsonl"

    # Given a migrated database with the demo, its static files collected
    _manage(env, tmp_path, deadline, "migrate", "--noinput")
    _manage(env, tmp_path, deadline, "collectstatic", "--noinput")
    _manage(
        env, tmp_path, deadline, "seed_demo", "--allow-without-debug", "--customers", "20", "--output", str(demo_file)
    )
    demo = json.loads(demo_file.read_text(encoding="utf-8"))

    # and the production processes: gunicorn with 3 workers, two Celery workers, beat
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    processes = Processes(env, tmp_path)
    try:
        web_log = processes.start(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "paygo.wsgi",
                "--workers",
                "3",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "10",
            ],
        )
        worker_logs = [
            processes.start(
                f"worker{n}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "paygo",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--hostname",
                    f"e2e{n}@%h",
                ],
            )
            for n in (1, 2)
        ]
        beat_log = processes.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "paygo",
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(tmp_path / "beat.pid"),
            ],
        )
        _wait_for("gunicorn to answer", lambda: _http_ready(f"{url}/api/schema/"), deadline, processes)
        _wait_for(
            "gunicorn's 3 workers",
            lambda: _tail(web_log, 200).count("Booting worker with pid") >= 3,
            deadline,
            processes,
        )
        for log in worker_logs:
            _wait_for(f"{log.stem} ready", lambda log=log: " ready." in _tail(log, 200), deadline, processes)

        # The admin (Spanish) and its static files are served with DEBUG off.
        login = httpx.get(f"{url}/admin/login/", timeout=10)
        assert login.status_code == 200
        assert 'lang="es-co"' in login.text
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', login.text)
        assert stylesheet, "the login page links no stylesheet"
        assert httpx.get(url + stylesheet.group(1), timeout=10).status_code == 200

        # When the registers sell through an outage, with lost replies and repeated batches
        simulator = subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator",
                "--json",
                "--no-progress",
                "--url",
                url,
                "--demo-file",
                str(demo_file),
                "--terminals",
                ",".join(TERMINALS),
                "--sales",
                "30",
                "--speed",
                "40",
                "--outage-seconds",
                "6",
                "--outage-start",
                "2",
                "--chaos",
                "--seed",
                "2027",
                "--settle-seconds",
                "90",
                "--readback",
                "-1",
                "--record",
                str(record_file),
            ],
            cwd=tmp_path,
            env={**inherited, "PYTHONPATH": str(PROJECT)},
            capture_output=True,
            text=True,
            timeout=deadline.left(200),
            check=False,
        )
        assert simulator.stdout.strip(), f"simulator printed nothing:\n{simulator.stderr}\n{processes.logs()}"
        summary = json.loads(simulator.stdout.strip().splitlines()[-1])
        print("simulator summary:", json.dumps(summary, ensure_ascii=False, sort_keys=True))
        assert simulator.returncode == 0, f"{summary['errors']}\n{simulator.stderr[-3000:]}"
        processes.assert_alive()

        # Then the terminals worked through the outage and every sale made is stored once
        sales = summary["sales"]
        upload = summary["upload"]
        assert summary["errors"] == []
        assert sales["offline"] > 0
        assert sales["online"] > 0
        assert sales["lost"] == 0
        assert upload["accepted_twice"] == 0
        assert upload["rejected"] == 0
        assert upload["resent_batches"] + summary["transport"]["chaos_timeouts"] > 0  # chaos happened
        assert upload["accepted"] + upload["duplicates"] == upload["uploaded"]
        made = [json.loads(line) for line in record_file.read_text(encoding="utf-8").splitlines()]
        stored_ids = {entry["id"] for entry in made if entry["stored"]}
        refused_ids = {entry["id"] for entry in made if not entry["stored"]}
        assert len(stored_ids) == sales["stored"] == sum(entry["stored"] for entry in made)

        with psycopg.connect(e2e_database, autocommit=True, connect_timeout=10) as db:
            rows = db.execute(
                "SELECT s.id::text, t.code FROM sales_sale s JOIN nodes_terminal t ON t.id = s.terminal_id"
            ).fetchall()
            assert len(rows) == len({sale_id for sale_id, _ in rows})
            assert {sale_id for sale_id, _ in rows} == stored_ids
            assert not refused_ids & {sale_id for sale_id, _ in rows}
            assert {code for _, code in rows} <= set(TERMINALS)

            # and every one of them is reconciled within a bounded wait
            def unreconciled() -> int:
                return db.execute("SELECT count(*) FROM sales_sale WHERE reconciled_at IS NULL").fetchone()[0]

            _wait_for("every sale reconciled", lambda: unreconciled() == 0, deadline, processes)

            # and the negative stock the terminals' books predict is what the server recorded
            recorded = db.execute(
                "SELECT DISTINCT n.code, p.sku FROM inventory_negativestockevent e"
                " JOIN nodes_node n ON n.id = e.node_id JOIN inventory_product p ON p.id = e.product_id"
                " ORDER BY 1, 2"
            ).fetchall()
            assert [list(pair) for pair in recorded] == summary["predicted_negative_stock"]

        # and the terminals' final balances, units and stock equal the server's
        assert summary["discrepancies"]["total"] == 0, summary["discrepancies"]["items"]
        assert summary["flags"]["readback_missing"] == 0
        # and the materialized stock and balances equal their ledgers
        verification = subprocess.run(
            [sys.executable, str(PROJECT / "manage.py"), "verify_ledgers"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline.left(60),
            check=False,
        )
        assert verification.returncode == 0, verification.stdout + verification.stderr

        # and beat (database scheduler) sent the sweep, which a worker ran
        _wait_for(
            "beat to send the sweep",
            lambda: "sweep-unreconciled-sales" in _tail(beat_log, 400),
            deadline,
            processes,
            cap=30,
        )
        _wait_for(
            "a worker to run the sweep",
            lambda: any(
                "sales.tasks.unreconciled_sales_sweep[" in line and "succeeded" in line
                for log in worker_logs
                for line in _tail(log, 5000).splitlines()
            ),
            deadline,
            processes,
            cap=30,
        )
        # and both workers took part in reconciliation
        for log in worker_logs:
            assert "sales.tasks.sales_reconcile" in _tail(log, 5000), f"{log.stem} reconciled nothing"
        assert len(demo["terminals"]) >= len(TERMINALS)
    finally:
        processes.stop_all()
        print(processes.logs())
