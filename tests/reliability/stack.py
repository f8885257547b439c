"""A production-like payGO stack as real processes, for fault injection on loopback.

* :class:`RelDatabase`: its own database ``paygo_rel_<random>`` on the test PostgreSQL
  server (migrated, demo seeded with ``--allow-without-debug``, dropped at the end).
* :class:`Gunicorn`, :class:`RedisServer`, :class:`CeleryWorker`: processes this suite
  starts itself and stops by PID (never by name).

Everything listens on 127.0.0.1 on ports picked free at run time.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)

# Sellable at N1 (COL-SANJOSE), by price: the crash and load tests build baskets from these.
N1_PRODUCTS = {
    "SKU-EMPANADA": "3500.00",
    "SKU-GASEOSA": "2500.00",
    "SKU-AGUA": "2000.00",
    "SKU-PAPAS": "2800.00",
    "SKU-CHOCOLATINA": "2200.00",
    "SKU-JUGO": "3000.00",
    "SKU-FRUTA": "1500.00",
    "SKU-AREPA": "3200.00",
}


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop_pid(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL: only this process, by its PID."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


# --- PostgreSQL -----------------------------------------------------------------------


def server_url() -> str:
    """The URL of the test PostgreSQL server (from ``DATABASE_URL``), without a database."""
    return os.environ["DATABASE_URL"]


def _with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def pg_restart() -> float:
    """Restart the test PostgreSQL server (``-m fast``: sessions are cut); returns seconds taken."""
    pg_bin, pg_data = os.environ["PAYGO_TEST_PG_BIN"], os.environ["PAYGO_TEST_PG_DATA"]
    command = [f"{pg_bin}/pg_ctl", "-D", pg_data, "-w", "-t", "60", "restart", "-m", "fast"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    started = time.monotonic()
    # pg_ctl keeps the new server's output on the log file it was first started with.
    subprocess.run(command, check=True, timeout=90, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - started


class RelDatabase:
    """``paygo_rel_<random>``: migrated, demo seeded, dropped by :meth:`drop`."""

    def __init__(self, workdir: Path) -> None:
        self.name = f"paygo_rel_{secrets.token_hex(4)}"
        self.admin_url = _with_dbname(server_url(), "postgres")
        self.url = _with_dbname(server_url(), self.name)
        self.workdir = workdir
        self.static_root = workdir / "static"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.env = production_env(self.url, static_root=self.static_root)
        self.manage("migrate", "--noinput")
        self.manage("seed_demo", "--allow-without-debug", "--output", str(workdir / "demo.json"))
        self.manage("collectstatic", "--noinput")
        self.demo = json.loads((workdir / "demo.json").read_text())

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def scalar(self, sql: str, params: Any = None) -> Any:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def sale_counts(self, sale_ids: list[str]) -> tuple[int, int, int]:
        """(sales, lines, payments) stored for these sale ids."""
        with self.connect() as conn:
            sales = conn.execute("SELECT count(*) FROM sales_sale WHERE id = ANY(%s::uuid[])", [sale_ids]).fetchone()
            lines = conn.execute(
                "SELECT count(*) FROM sales_saleline WHERE sale_id = ANY(%s::uuid[])", [sale_ids]
            ).fetchone()
            payments = conn.execute(
                "SELECT count(*) FROM sales_payment WHERE sale_id = ANY(%s::uuid[])", [sale_ids]
            ).fetchone()
        return sales[0], lines[0], payments[0]

    def open_transactions(self) -> int:
        """Sessions of this database inside a transaction (other than the asking one)."""
        return self.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND xact_start IS NOT NULL "
            "AND pid <> pg_backend_pid()",
            [self.name],
        )

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def production_env(database_url: str, *, static_root: Path, **extra: str) -> dict[str, str]:
    """The environment of a production deployment, on loopback and plain HTTP."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PAYGO_", "CELERY_", "PYTEST")) and key != "DATABASE_URL"
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "paygo.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "DJANGO_STATIC_ROOT": str(static_root),
            "PAYGO_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


# --- Processes ------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn paygo.wsgi`` on a free loopback port; :meth:`stop` by PID."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2, timeout: int = 60) -> None:
        self.env, self.log, self.workers, self.timeout = env, log, workers, timeout
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "paygo.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                str(self.timeout),
                "--graceful-timeout",
                "5",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 60, f"gunicorn on {self.url} (log: {self.log.name})", interval=0.2)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(self.url + "/api/schema/", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def worker_pids(self) -> list[int]:
        """The master's children (its workers), read from /proc."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill_workers(self) -> list[int]:
        pids = self.worker_pids()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def kill_all(self) -> None:
        """SIGKILL the master and its workers, as a crashed machine would."""
        pids = self.worker_pids()
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log_file.close()

    def stop(self) -> None:
        if self.process is None:
            return
        pids = self.worker_pids()
        _stop_pid(self.process)
        for pid in pids:  # workers exit with their master; make sure, by PID
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log_file.close()


class RedisServer:
    """A ``redis-server`` on a free (or given) loopback port, no persistence."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        wait_until(lambda: _ping(client), 20, f"redis-server on port {self.port}", interval=0.1)

    def stop(self) -> None:
        if self.process is not None:
            _stop_pid(self.process)
            self.process = None


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def solo_worker_argv(*, log: Path, name: str) -> list[str]:
    """``celery -A paygo worker`` in one process (``--pool=solo``: its PID is the worker
    that runs the tasks, so a test can SIGKILL it), logging to ``log``, a unique hostname."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "paygo",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        f"--logfile={log}",
        f"--hostname={name}-{uuid.uuid4().hex[:8]}@localhost",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


class CeleryWorker:
    """``celery -A paygo worker --pool=solo`` on the stack's database; stopped by PID."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            solo_worker_argv(log=log, name="rel"),
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._ready, 60, "the celery worker", interval=0.1)
        except AssertionError:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"celery worker exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        return self.log.exists() and "ready." in self.log.read_text(errors="replace")

    def stop(self) -> None:
        _stop_pid(self.process, timeout=30)


def task_send(broker_url: str, name: str, **kwargs: Any) -> None:
    from celery import Celery

    app = Celery("paygo-rel-publisher", broker=broker_url)
    app.conf.task_serializer = "json"
    try:
        app.send_task(name, kwargs=kwargs)
    finally:
        app.close()


# --- Payloads -------------------------------------------------------------------------


@dataclass
class TerminalClient:
    """One simulated register: its key, its own ``seq`` counter, the sales it made."""

    code: str
    key: str
    base_url: str
    seq: int = 0
    sale_ids: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def sale(self, *, lines: int = 1, rng=None, occurred_at: datetime | None = None) -> dict[str, Any]:
        """A cash sale of ``lines`` N1 products (the demo's N1 terminals)."""
        self.seq += 1
        skus = list(N1_PRODUCTS)
        body_lines = []
        total = Decimal("0")
        for index in range(lines):
            sku = skus[(self.seq + index) % len(skus)] if rng is None else rng.choice(skus)
            quantity = 1 + (index % 3)
            body_lines.append({"sku": sku, "quantity": str(quantity), "unit_price": N1_PRODUCTS[sku]})
            total += quantity * Decimal(N1_PRODUCTS[sku])
        sale_id = str(uuid.uuid4())
        self.sale_ids.append(sale_id)
        when = occurred_at or datetime.now(UTC) - timedelta(seconds=30)
        return {
            "id": sale_id,
            "seq": self.seq,
            "occurred_at": when.isoformat(),
            "offline": True,
            "customer": None,
            "lines": body_lines,
            "payments": [{"method": "cash", "amount": f"{total:.2f}"}],
        }

    def batch(self, count: int, lines: int = 1) -> dict[str, Any]:
        # Just sold, in time order: sales arriving older than ones already reconciled make
        # reconciliation recompute later effects (slow under load; measured separately).
        start = datetime.now(UTC) - timedelta(seconds=2)
        return {
            "batch_id": str(uuid.uuid4()),
            "sales": [self.sale(lines=lines, occurred_at=start + timedelta(milliseconds=i)) for i in range(count)],
        }


def assert_error_shape(response: httpx.Response) -> dict:
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:300],
    )
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]
