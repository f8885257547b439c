"""Performance benchmarks of the payGO back office on PostgreSQL.

    python bench/run.py            # full run (about 5-10 minutes)
    python bench/run.py --quick    # small run (about 1-2 minutes)
    python bench/run.py --database-url postgres://user@host:port/db   # use a throwaway DB

Starts a throwaway PostgreSQL (tuned like a production server on this machine, see
``PG_SETTINGS``) and a redis-server (the Celery broker the web processes publish
reconciliation tasks to; nobody consumes them, reconciliation is measured in-process),
then measures in one run: ingest through gunicorn with concurrent uploaders, the
reconcile service, the balance snapshot and delta feed, ingest with a large history,
and the baselines (COPY ceiling, naive one-``save()``-per-row ORM, and reconcile's write
ceiling: the rows a reconcile wrote, written again with COPY and set-based updates).
Prints a table and writes ``bench/results.json``. Every process it starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import io
import itertools
import json
import os
import platform
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_PORT = 55532
REDIS_PORT = 56479
# Reconcile worker processes run at once beside the one-process figure: the deployment's
# Celery worker concurrency (Procfile, CELERY_CONCURRENCY, 2 by default).
RECONCILE_PROCESSES = 2
BOGOTA = ZoneInfo("America/Bogota")

# A production-like configuration for this machine (2 cores, ~23 GB RAM, virtual disk):
# durability stays ON (fsync, synchronous_commit, full_page_writes), memory sized like a
# dedicated server, checkpoints spread out, planner told the storage is SSD-like, JIT off
# (it only costs time on short OLTP queries), full-page images in the WAL compressed with
# lz4 (PostgreSQL 15+; the first change of a page after a checkpoint writes the whole
# page, and inserts into large indexes keyed by random UUIDs change a new page per row).
PG_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "12GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "wal_buffers": "64MB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "jit": "off",
    "max_connections": "100",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_compression": "lz4",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- Services ---------------------------------------------------------------------------


class Services:
    """Throwaway PostgreSQL and redis-server, stopped by PID at exit."""

    def __init__(
        self, workdir: Path, *, need_postgres: bool, pg_port: int = PG_PORT, redis_port: int = REDIS_PORT
    ) -> None:
        self.workdir = workdir
        self.pg_port = pg_port
        self.redis_port = redis_port
        self.pg_data = workdir / "pg"
        self.pg_started = False
        self.redis_pid: int | None = None
        self.pg_bin = self._pg_bin() if need_postgres else None

    @staticmethod
    def _pg_bin() -> Path:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not candidates:
            raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql), or use --database-url")
        return candidates[-1].parent

    def _as_pg(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def start_postgres(self) -> str:
        self.pg_data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(self.pg_data, "postgres")
        subprocess.run(
            self._as_pg(
                str(self.pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.pg_data} " + " ".join(
            f"-c {k}={v}" for k, v in PG_SETTINGS.items()
        )
        subprocess.run(
            self._as_pg(
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-l",
                str(self.pg_data / "log"),
                "-w",
                "-o",
                options,
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.pg_started = True
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                "postgres",
                "-qc",
                "CREATE DATABASE paygo_bench",
            ],
            check=True,
        )
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/paygo_bench"

    def start_redis(self) -> str | None:
        if not shutil.which("redis-server"):
            return None
        pidfile = self.workdir / "redis.pid"
        subprocess.run(
            [
                "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--daemonize", "yes",
                "--save", "", "--appendonly", "no", "--pidfile", str(pidfile), "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                self.redis_pid = int(pidfile.read_text().strip())
                break
            time.sleep(0.05)
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def stop(self) -> None:
        if self.redis_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.redis_pid, signal.SIGTERM)
        if self.pg_started:
            subprocess.run(
                self._as_pg(str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "-w", "stop"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)


def postmaster_pid(services: Services) -> list[int]:
    if not services.pg_started:
        return []  # an external server: its CPU is not ours to read
    try:
        return [int((services.pg_data / "postmaster.pid").read_text().split()[0])]
    except (OSError, ValueError):
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int, logdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(logdir / "gunicorn.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "paygo.wsgi:application", "--worker-class", "sync",
                "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}", "--timeout", "120",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, key: str) -> None:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("gunicorn exited; see its log")
            try:
                r = httpx.get(f"{self.url}/api/v1/pos/config", headers={"Authorization": f"Bearer {key}"}, timeout=5)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer in 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- CPU accounting ----------------------------------------------------------------------
# The machine may be shared: wall-clock rates then reflect the neighbours too. The CPU
# seconds our server processes (gunicorn workers, PostgreSQL backends) spend per sale are
# independent of that, and give a contention-free projection.

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(roots: list[int]) -> float:
    """User+system CPU seconds of the processes under ``roots`` (Linux only): of the live
    ones, plus what each has collected of its exited children (``cutime``/``cstime``), so
    a PostgreSQL backend or autovacuum worker ending between two readings still counts."""
    total = 0
    for root in roots:
        for pid in _descendants(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / _CLK_TCK


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


SERVER_ROOTS: list[int] = []
# The same processes split in two: the web server's, and PostgreSQL's (when started here).
WEB_ROOTS: list[int] = []


# --- Machine ----------------------------------------------------------------------------


def machine_info() -> dict:
    import django
    from django.db import connection

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "postgresql": pg_version,
        "python": platform.python_version(),
        "django": django.get_version(),
    }


# --- Fixture ----------------------------------------------------------------------------

UNIT_TYPE = "ALMUERZO"
# Time between two sales of the node in the generated timeline (4 sales a second).
SALE_INTERVAL = timedelta(seconds=0.25)


class Fixture:
    """One institution, one node, POS terminals (uploaders), products and customers."""

    def __init__(self, *, terminals: int, customers: int, rng: random.Random) -> None:
        from billing.ledger import balance_movements_post, unit_movements_post
        from billing.models import (
            BalanceMovement,
            BalanceMovementKind,
            Customer,
            InvoiceResolution,
            ProductBlock,
            UnitMovement,
            UnitMovementKind,
        )
        from inventory.ledger import stock_movements_post
        from inventory.models import Product, StockMovement, StockMovementKind
        from nodes.keys import terminal_key_rotate
        from nodes.models import Institution, Node, NumberingLevel, Terminal

        self.rng = rng
        self.institution = Institution.objects.create(code="BENCH", name="Colegio Bench")
        self.node = Node.objects.create(
            institution=self.institution,
            code="BENCH-N1",
            name="Cafetería Bench",
            allow_offline_closed_inventory_sales=True,
            use_last_balance_offline=True,
            invoice_numbering_level=NumberingLevel.NODE,
        )
        # A node-level DIAN resolution, as every real node has: reconciliation numbers the
        # offline sales from it.
        today = datetime.now(BOGOTA).date()
        InvoiceResolution.objects.create(
            institution=self.institution,
            level=NumberingLevel.NODE,
            node=self.node,
            number="18764099999",
            resolution_date=today - timedelta(days=800),
            prefix="BN",
            range_from=1,
            range_to=100_000_000,
            next_number=1,
            valid_from=today - timedelta(days=800),
            valid_until=today + timedelta(days=365),
        )
        self.terminals = []
        for i in range(terminals):
            t = Terminal.objects.create(node=self.node, code=f"BENCH-CAJA-{i:02d}", name=f"Caja {i}")
            self.terminals.append((t, terminal_key_rotate(terminal=t)))
        self.seq = {t.pk: 0 for t, _ in self.terminals}
        # One timeline for every batch of the run: each repetition continues where the
        # previous one stopped, as a node's day does (reps that restarted the clock made
        # every sale of a repetition late against the previous one's).
        self.clock = datetime.now(UTC) - timedelta(hours=8)

        products = [
            Product(
                institution=self.institution,
                sku=f"SKU-{i:03d}",
                name=f"Producto {i}",
                price=Decimal(rng.choice([1500, 2500, 3500, 4200, 6000, 8500, 12000])),
                tracks_inventory=i < 15,
                requires_preparation=15 <= i < 20,
                unit_type=UNIT_TYPE if i in (20, 21) else "",
            )
            for i in range(40)
        ]
        Product.objects.bulk_create(products)
        self.products = list(Product.objects.filter(institution=self.institution).order_by("sku"))
        self.money_products = [p for p in self.products if not p.unit_type]
        self.unit_products = [p for p in self.products if p.unit_type]
        now = datetime.now(UTC) - timedelta(days=400)
        stock_movements_post(
            movements=[
                StockMovement(
                    node=self.node, product=p, kind=StockMovementKind.INITIAL, quantity=Decimal(100000), occurred_at=now
                )
                for p in self.products
                if p.tracks_inventory
            ]
        )
        Customer.objects.bulk_create(
            [
                Customer(
                    institution=self.institution,
                    code=f"C-{i:06d}",
                    name=f"Cliente {i}",
                    overdraft_limit=Decimal(rng.choice([0, 5000, 20000])),
                    daily_max=Decimal(rng.choice([30000, 60000])) if i % 5 == 0 else None,
                )
                for i in range(customers)
            ]
        )
        self.customers = list(Customer.objects.filter(institution=self.institution).order_by("pk"))
        balance_movements_post(
            movements=[
                BalanceMovement(customer=c, kind=BalanceMovementKind.TOPUP, amount=Decimal(500000), occurred_at=now)
                for c in self.customers
            ]
        )
        unit_movements_post(
            movements=[
                UnitMovement(
                    customer=c, unit_type=UNIT_TYPE, kind=UnitMovementKind.PURCHASE, quantity=1000, occurred_at=now
                )
                for c in self.customers[::2]
            ]
        )
        ProductBlock.objects.bulk_create(
            [ProductBlock(customer=c, product=self.products[30]) for c in self.customers[::50]]
        )
        self.unit_customers = {c.pk for c in self.customers[::2]}

    def sale(self, terminal_id: int, occurred_at: datetime) -> dict:
        rng = self.rng
        self.seq[terminal_id] += 1
        customer = rng.choice(self.customers) if rng.random() < 0.8 else None
        lines = []
        money_total = Decimal("0.00")
        units_qty = 0
        for _ in range(rng.randint(1, 5)):
            if customer is not None and customer.pk in self.unit_customers and rng.random() < 0.15:
                product = rng.choice(self.unit_products)
                qty = rng.choice([1, 1, 2])
                units_qty += qty
                lines.append({"sku": product.sku, "quantity": str(qty), "unit_price": "0.00"})
            else:
                product = rng.choice(self.money_products)
                qty = rng.choice([1, 1, 1, 2, 3])
                money_total += product.price * qty
                lines.append({"sku": product.sku, "quantity": str(qty), "unit_price": f"{product.price:.2f}"})
        payments = []
        if money_total:
            if customer is None:
                payments.append({"method": rng.choice(["cash", "card"]), "amount": f"{money_total:.2f}"})
            elif rng.random() < 0.2:
                cash = (money_total / 2).quantize(Decimal("1"))
                payments.append({"method": "paygo", "amount": f"{money_total - cash:.2f}"})
                payments.append({"method": "cash", "amount": f"{cash:.2f}"})
            else:
                payments.append({"method": "paygo", "amount": f"{money_total:.2f}"})
        if units_qty:
            payments.append({"method": "units", "amount": str(units_qty), "unit_type": UNIT_TYPE})
        sale = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "seq": self.seq[terminal_id],
            "occurred_at": occurred_at.astimezone(BOGOTA).isoformat(timespec="seconds"),
            "offline": True,
            "customer": customer.code if customer else None,
            "lines": lines,
            "payments": payments,
            "invoice": None,
        }
        if customer is not None and rng.random() < 0.5:
            sale["known_balance"] = "100000.00"
        return sale

    def batches(self, count: int, size: int) -> list[tuple[int, str, bytes, dict]]:
        """``count`` batches of ``size`` sales, round-robin over the terminals, encoded."""
        import orjson

        out = []
        for i in range(count):
            terminal, key = self.terminals[i % len(self.terminals)]
            sales = []
            for _ in range(size):
                sales.append(self.sale(terminal.pk, self.clock))
                self.clock += SALE_INTERVAL
            body = {"batch_id": str(uuid.uuid4()), "sales": sales}
            out.append((terminal.pk, key, orjson.dumps(body), body))
        return out


# --- Ingest -----------------------------------------------------------------------------


def ingest_run(url: str, batches: list, uploaders: int, *, rate: float | None = None) -> dict:
    """POST the batches with ``uploaders`` concurrent clients; each uploader owns the
    batches of its terminals, in order (a terminal uploads its sales in seq order).

    Without ``rate`` each uploader sends its next batch as soon as the last is answered
    (closed loop: the server always holds ``uploaders`` batches, the most it can be
    given). With ``rate`` (sales/s, all uploaders together) the batches are sent on a
    fixed schedule (open loop): uploader ``u`` sends its ``k``-th batch at
    ``start + (k + u / uploaders) × uploaders × batch size / rate``, and a batch's latency
    counts from that scheduled time, not from when it was sent, so an uploader held up
    by a slow answer adds the delay to its next batches instead of hiding it."""
    import httpx

    per_uploader: list[queue.Queue] = [queue.Queue() for _ in range(uploaders)]
    terminal_slot: dict[int, int] = {}
    for terminal_id, key, body, _ in batches:
        slot = terminal_slot.setdefault(terminal_id, len(terminal_slot) % uploaders)
        per_uploader[slot].put((key, body))
    latencies: list[float] = []
    errors: list[str] = []
    accepted = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(uploaders + 1)

    sizes = [len(b[3]["sales"]) for b in batches]
    interval = uploaders * (sum(sizes) / len(sizes)) / rate if rate else 0.0
    start = [0.0]

    def work(slot: int, q: queue.Queue) -> None:
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            for k in itertools.count():
                try:
                    key, body = q.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                if rate:
                    scheduled = start[0] + (k + slot / uploaders) * interval
                    if scheduled > t0:
                        time.sleep(scheduled - t0)
                    t0 = scheduled
                r = client.post(
                    f"{url}/api/v1/pos/sales/batches",
                    content=body,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                    else:
                        accepted[0] += r.json()["accepted"]

    threads = [threading.Thread(target=work, args=(slot, q)) for slot, q in enumerate(per_uploader)]
    for t in threads:
        t.start()
    cpu0 = cpu_seconds(SERVER_ROOTS)
    web0 = cpu_seconds(WEB_ROOTS)
    t0 = start[0] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server_cpu = cpu_seconds(SERVER_ROOTS) - cpu0
    web_cpu = cpu_seconds(WEB_ROOTS) - web0
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    sales = sum(len(b[3]["sales"]) for b in batches)
    if accepted[0] != sales:
        raise SystemExit(f"ingest accepted {accepted[0]} of {sales} sales")
    rows = sum(len(s["lines"]) + len(s["payments"]) + 1 for b in batches for s in b[3]["sales"])
    return {
        "batches": len(batches),
        "sales": sales,
        "rows": rows,
        "paced_sales_per_s": rate,
        "seconds": wall,
        "sales_per_s": sales / wall,
        "rows_per_s": rows / wall,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_batch": server_cpu * 1000 / len(batches),
        "web_cpu_ms_per_batch": web_cpu * 1000 / len(batches),
        "postgres_cpu_ms_per_batch": (server_cpu - web_cpu) * 1000 / len(batches),
        "sales_per_server_cpu_s": sales / server_cpu if server_cpu else None,
        "load_average": load_average(),
    }


def ingest_reps(url: str, fixture: Fixture, *, reps: int, batches: int, uploaders: int, label: str) -> dict:
    runs = []
    for rep in range(reps):
        data = fixture.batches(batches, 500)
        result = ingest_run(url, data, uploaders)
        result["batch_ids"] = [b[3]["batch_id"] for b in data]
        runs.append(result)
        log(
            f"{label} rep {rep + 1}: {result['sales_per_s']:.0f} sales/s, "
            f"p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms; CPU per batch: "
            f"web {result['web_cpu_ms_per_batch']:.0f} ms, PostgreSQL {result['postgres_cpu_ms_per_batch']:.0f} ms"
        )
    return {
        "runs": [{k: v for k, v in r.items() if k != "batch_ids"} for r in runs],
        "sales_per_s": median([r["sales_per_s"] for r in runs]),
        "rows_per_s": median([r["rows_per_s"] for r in runs]),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p95_ms": median([r["p95_ms"] for r in runs]),
        "sales_per_server_cpu_s": median([r["sales_per_server_cpu_s"] or 0 for r in runs]),
        "_batch_ids": runs[0]["batch_ids"],
        "_batches": data,
    }


def ingest_then_reconcile(
    url: str,
    fixture: Fixture,
    *,
    reps: int,
    batches: int,
    uploaders: int,
    label: str,
    reconcile: bool = True,
    baselines: Callable[[dict], dict] | None = None,
) -> tuple[list[dict], list[dict], list[dict]]:
    """``reps`` times: one ingest repetition, then (when given) ``baselines`` over the same
    rows, then (unless ``reconcile`` is off) reconcile what it stored. Returns the ingest
    runs, the baseline runs and the reconcile runs.

    The baselines run right after the repetition they are compared with: this machine's
    speed drifts by up to 2× within minutes (the same code measured 77 and 134 ms of web
    CPU per batch in two repetitions of one run), so a ratio is only meaningful between
    measurements taken side by side, and the targets take the median of the ratios."""
    ingest_runs, baseline_runs, reconcile_runs = [], [], []
    for rep in range(reps):
        one = ingest_reps(url, fixture, reps=1, batches=batches, uploaders=uploaders, label=label)
        ingest_runs.extend(one["runs"])
        if baselines is not None:
            baseline_runs.append(baselines(one))
        if reconcile:
            # The older half of the backlog by one process, the rest right after by the
            # deployment's worker processes: the two rates side by side.
            from sales.models import Sale
            from sales.reconcile import RECONCILE_CHUNK_SIZE

            pending = Sale.objects.filter(reconciled_at__isnull=True).count()
            rec = reconcile_all(max_sales=pending // 2 // RECONCILE_CHUNK_SIZE * RECONCILE_CHUNK_SIZE)
            rec["processes"] = reconcile_processes(RECONCILE_PROCESSES)
            rec["processes_vs_one"] = rec["processes"]["sales_per_s"] / rec["sales_per_s"]
            log(
                f"{label} reconcile rep {rep + 1}: {rec['sales']} sales, {rec['sales_per_s']:.0f} sales/s in one "
                f"process; {rec['processes']['sales']} more with {RECONCILE_PROCESSES} processes: "
                f"{rec['processes']['sales_per_s']:.0f} sales/s ({rec['processes_vs_one']:.2f}×)"
            )
            if baselines is not None:
                ceiling = reconcile_write_ceiling(one["_batch_ids"], since=rec["started_at"])
                rec["write_ceiling"] = ceiling
                rec["vs_write_ceiling"] = rec["sales_per_s"] / ceiling["sales_per_s"]
                log(
                    f"  write ceiling {ceiling['sales_per_s']:.0f} sales/s "
                    f"(reconcile {rec['vs_write_ceiling']:.2f} of it)"
                )
            reconcile_runs.append(rec)
    return ingest_runs, baseline_runs, reconcile_runs


def baselines_beside(fixture: Fixture, naive_count: int) -> Callable[[dict], dict]:
    """The COPY ceiling and the naive baseline over the rows of one ingest repetition,
    with the ingest's ratios to them (rows/s to COPY's, sales/s to naive's)."""

    def run(one: dict) -> dict:
        ingest = one["runs"][0]
        log("COPY baseline")
        copy = copy_baseline(one["_batch_ids"], 1)
        log("naive baseline")
        naive = naive_baseline(one["_batches"], fixture, naive_count)
        log(
            f"  COPY {copy['rows_per_s']:.0f} rows/s (ingest {ingest['rows_per_s'] / copy['rows_per_s']:.2f} of it); "
            f"naive {naive['sales_per_s']:.0f} sales/s (ingest {ingest['sales_per_s'] / naive['sales_per_s']:.1f}×)"
        )
        return {
            "copy": copy,
            "naive": naive,
            "rows_vs_copy": ingest["rows_per_s"] / copy["rows_per_s"],
            "sales_vs_naive": ingest["sales_per_s"] / naive["sales_per_s"],
        }

    return run


def baselines_summary(runs: list[dict]) -> tuple[dict, dict, dict]:
    """COPY and naive figures (median of the repetitions, each listed) and the ratios."""
    copy = {
        "runs": [r["copy"] for r in runs],
        "sales_per_s": median([r["copy"]["sales_per_s"] for r in runs]),
        "rows_per_s": median([r["copy"]["rows_per_s"] for r in runs]),
        "rows": runs[0]["copy"]["rows"],
        "sales": runs[0]["copy"]["sales"],
    }
    naive = {
        "runs": [r["naive"] for r in runs],
        "sales_per_s": median([r["naive"]["sales_per_s"] for r in runs]),
        "rows_per_s": median([r["naive"]["rows_per_s"] for r in runs]),
        "sales": runs[0]["naive"]["sales"],
    }
    ratios = {
        "rows_vs_copy": [r["rows_vs_copy"] for r in runs],
        "sales_vs_naive": [r["sales_vs_naive"] for r in runs],
        "rows_vs_copy_median": median([r["rows_vs_copy"] for r in runs]),
        "sales_vs_naive_median": median([r["sales_vs_naive"] for r in runs]),
    }
    return copy, naive, ratios


def tables_analyze() -> None:
    """``ANALYZE`` the database once its tables hold the warm-up's rows, as autovacuum does
    in a deployment within a minute of its first sales (a table is analyzed once 50 rows
    plus 10 % of it changed). On tables never analyzed the planner reads a reconcile
    chunk's lines, payments and balance walk by sequential scans, and whether
    autovacuum's own analyze happened to land before a repetition decided that
    repetition's plans. Statistics taken once scale as the tables grow (rows per page,
    distinct values as a fraction of the rows), so later repetitions need none of their
    own."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def reconcile_all(*, max_sales: int | None = None) -> dict:
    """Reconcile the unreconciled sales in this process (all of them, or the oldest
    ``max_sales`` by time of sale, a whole number of chunks), as one worker process does."""
    from paygo.collector import collector_tune
    from sales.models import Sale
    from sales.reconcile import RECONCILE_CHUNK_SIZE, sales_reconcile

    # Reconcile runs here, in-process, with the collector set as a worker process sets it.
    collector_tune()
    pending = Sale.objects.filter(reconciled_at__isnull=True).count()
    chunks = 10**6 if max_sales is None else max_sales // RECONCILE_CHUNK_SIZE
    expected = pending if max_sales is None else min(pending, chunks * RECONCILE_CHUNK_SIZE)
    started_at = datetime.now(UTC)
    cpu0 = cpu_seconds(SERVER_ROOTS[1:]) + time.process_time()
    t0 = time.perf_counter()
    done = sales_reconcile(sale_ids=None, max_chunks=chunks)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(SERVER_ROOTS[1:]) + time.process_time() - cpu0
    assert done == expected, (done, expected)
    return {
        "sales": done,
        "seconds": seconds,
        "sales_per_s": done / seconds,
        "cpu_s": cpu,
        "sales_per_cpu_s": done / cpu if cpu else None,
        "load_average": load_average(),
        "started_at": started_at,
    }


def reconcile_processes(processes: int) -> dict:
    """Reconcile every unreconciled sale with ``processes`` worker processes at once, as
    the deployment's Celery worker does (``--concurrency``, 2 by default): each runs
    :func:`sales_reconcile` until nothing is left, taking the next chunk in time of sale
    that no other holds (``SKIP LOCKED``). Forked from this process, with its own
    database connection; the CPU counted is theirs and PostgreSQL's."""
    from django.db import connections

    from sales.models import Sale

    pending = Sale.objects.filter(reconciled_at__isnull=True).count()
    connections.close_all()  # each child opens its own
    cpu0 = cpu_seconds(SERVER_ROOTS[1:])
    t0 = time.perf_counter()
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # the child: reconcile, and leave without running the parent's exit handlers
            status = 1
            try:
                from paygo.collector import collector_tune
                from sales.reconcile import sales_reconcile

                collector_tune()
                sales_reconcile(sale_ids=None, max_chunks=10**6)
                status = 0
            except BaseException:
                traceback.print_exc()  # the parent only sees the exit status
            finally:
                sys.stderr.flush()
                os._exit(status)
        pids.append(pid)
    child_cpu, failed = 0.0, 0
    for pid in pids:
        _, status, usage = os.wait4(pid, 0)
        child_cpu += usage.ru_utime + usage.ru_stime
        failed += status != 0
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(SERVER_ROOTS[1:]) - cpu0 + child_cpu
    left = Sale.objects.filter(reconciled_at__isnull=True).count()
    assert not failed, f"{failed} reconcile processes failed"
    assert not left, f"{left} sales left unreconciled"
    return {
        "processes": processes,
        "sales": pending,
        "seconds": seconds,
        "sales_per_s": pending / seconds,
        "cpu_s": cpu,
        "sales_per_cpu_s": pending / cpu if cpu else None,
    }


# --- Baselines --------------------------------------------------------------------------

SCRATCH = {"sales_sale": "bench_copy_sale", "sales_saleline": "bench_copy_line", "sales_payment": "bench_copy_payment"}


def copy_baseline(batch_ids: list[str], reps: int) -> dict:
    """COPY the same rows (read back from the tables) into scratch copies of the tables
    (``LIKE … INCLUDING ALL``: same columns, defaults, checks and indexes; no FKs)."""
    from django.db import connection

    connection.ensure_connection()
    pg = connection.connection
    data: dict[str, tuple[list[str], list[tuple]]] = {}
    with pg.cursor() as cur:
        cur.execute(
            "SELECT s.* FROM sales_sale s JOIN sales_uploadbatch b ON b.id = s.batch_id WHERE b.batch_id = ANY(%s)",
            [[uuid.UUID(b) for b in batch_ids]],
        )
        data["sales_sale"] = ([d.name for d in cur.description], cur.fetchall())
        ids = [r[0] for r in data["sales_sale"][1]]
        for table in ("sales_saleline", "sales_payment"):
            cur.execute(f"SELECT * FROM {table} WHERE sale_id = ANY(%s)", [ids])
            data[table] = ([d.name for d in cur.description], cur.fetchall())
        for table, scratch in SCRATCH.items():
            cur.execute(f"DROP TABLE IF EXISTS {scratch}")
            cur.execute(f"CREATE TABLE {scratch} (LIKE {table} INCLUDING ALL)")
    pg.commit()
    rows = sum(len(v[1]) for v in data.values())
    times = []
    for _ in range(reps):
        with pg.cursor() as cur:
            for scratch in SCRATCH.values():
                cur.execute(f"TRUNCATE {scratch}")
        pg.commit()
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            for table, scratch in SCRATCH.items():
                columns, values = data[table]
                with cur.copy(f"COPY {scratch} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
        pg.commit()
        times.append(time.perf_counter() - t0)
    with pg.cursor() as cur:
        for scratch in SCRATCH.values():
            cur.execute(f"DROP TABLE {scratch}")
    pg.commit()
    seconds = median(times)
    sales = len(data["sales_sale"][1])
    return {
        "sales": sales,
        "rows": rows,
        "seconds": seconds,
        "sales_per_s": sales / seconds,
        "rows_per_s": rows / seconds,
        "runs_s": times,
    }


# What one reconcile of a repetition's sales appended, read back for the write ceiling:
# (table, the statement reading its rows with the sale each belongs to first). Rows an
# online sale's ingest wrote are left out: only the offline fixture's reconcile writes.
CEILING_APPENDED = {
    "inventory_stockmovement": "SELECT l.sale_id, m.* FROM inventory_stockmovement m"
    " JOIN sales_saleline l ON l.id = m.sale_line_id WHERE l.sale_id = ANY(%(ids)s) AND m.created_at >= %(since)s",
    "billing_balancemovement": "SELECT p.sale_id, m.* FROM billing_balancemovement m"
    " JOIN sales_payment p ON p.id = m.payment_id WHERE p.sale_id = ANY(%(ids)s) AND m.created_at >= %(since)s",
    "billing_unitmovement": "SELECT p.sale_id, m.* FROM billing_unitmovement m"
    " JOIN sales_payment p ON p.id = m.payment_id WHERE p.sale_id = ANY(%(ids)s) AND m.created_at >= %(since)s",
    "sales_saleflag": "SELECT f.sale_id, f.* FROM sales_saleflag f"
    " WHERE f.sale_id = ANY(%(ids)s) AND f.created_at >= %(since)s",
    "sales_comanda": "SELECT c.sale_id, c.* FROM sales_comanda c JOIN sales_sale s ON s.id = c.sale_id"
    " WHERE c.sale_id = ANY(%(ids)s) AND s.offline",
}
# The sale columns reconcile sets, as they were before it (offline sales numbered by the
# server got their number from it).
CEILING_SALE_BEFORE = {
    "reconciled_at": "NULL",
    "invoice_resolution_id": "CASE WHEN offline AND invoice_source = 'server' THEN NULL ELSE invoice_resolution_id END",
    "invoice_prefix": "CASE WHEN offline AND invoice_source = 'server' THEN '' ELSE invoice_prefix END",
    "invoice_number": "CASE WHEN offline AND invoice_source = 'server' THEN NULL ELSE invoice_number END",
    "invoice_source": "CASE WHEN offline AND invoice_source = 'server' THEN '' ELSE invoice_source END",
}


def reconcile_write_ceiling(batch_ids: list[str], *, since: datetime) -> dict:
    """The ceiling of reconciliation in this write model, over the sales of one ingest
    repetition just reconciled: what their reconcile wrote, written again into scratch
    copies of its tables (``LIKE … INCLUDING ALL``: same columns, generated columns, checks
    and indexes; no foreign keys), ``RECONCILE_CHUNK_SIZE`` sales at a time in time of
    sale, one transaction per chunk as reconcile commits. Appended rows (stock, balance and unit
    movements, flags, comandas) go by COPY; changed rows by one ``UPDATE … FROM unnest``
    per table: the sales (``reconciled_at``, deferred invoice numbers), their customers
    (balance plus one feed sequence per chunk), node stock and unit balances. Nothing is
    read, walked in time order, locked or checked and no Python builds a row: the rate no
    implementation writing these rows can beat on this machine, as COPY is for ingest."""
    from django.db import connection
    from psycopg.types.string import TextLoader

    from sales.reconcile import RECONCILE_CHUNK_SIZE

    connection.ensure_connection()
    pg = connection.connection
    scratch: list[str] = []
    with pg.cursor() as cur:
        # JSON columns (flag details, comanda items) are copied back as their text.
        cur.adapters.register_loader("jsonb", TextLoader)
        cur.execute(
            "SELECT s.id FROM sales_sale s JOIN sales_uploadbatch b ON b.id = s.batch_id"
            " WHERE b.batch_id = ANY(%s) ORDER BY s.occurred_at, s.id",
            [[uuid.UUID(b) for b in batch_ids]],
        )
        sale_ids = [row[0] for row in cur.fetchall()]
        chunk_of = {sale_id: i // RECONCILE_CHUNK_SIZE for i, sale_id in enumerate(sale_ids)}
        chunks = (len(sale_ids) + RECONCILE_CHUNK_SIZE - 1) // RECONCILE_CHUNK_SIZE
        params = {"ids": sale_ids, "since": since}
        appended: dict[str, tuple[list[str], list[list[tuple]]]] = {}
        for table, sql in CEILING_APPENDED.items():
            cur.execute(sql, params)
            columns = [d.name for d in cur.description][1:]
            rows: list[list[tuple]] = [[] for _ in range(chunks)]
            for row in cur.fetchall():
                rows[chunk_of[row[0]]].append(row[1:])
            appended[table] = (columns, rows)
        cur.execute(
            "SELECT id, reconciled_at, invoice_resolution_id, invoice_prefix, invoice_number, invoice_source"
            " FROM sales_sale WHERE id = ANY(%s)",
            [sale_ids],
        )
        sale_rows: list[list[tuple]] = [[] for _ in range(chunks)]
        for row in cur.fetchall():
            sale_rows[chunk_of[row[0]]].append(row)

        def chunk_sums(table: str, keys: tuple[str, ...], value: str) -> list[dict[tuple, Decimal | int]]:
            """``value`` of the rows appended to ``table`` summed by ``keys``, chunk by chunk."""
            columns, rows = appended[table]
            key_at, value_at = [columns.index(k) for k in keys], columns.index(value)
            sums: list[dict[tuple, Decimal | int]] = [{} for _ in range(chunks)]
            for chunk, chunk_rows in enumerate(rows):
                for row in chunk_rows:
                    key = tuple(row[i] for i in key_at)
                    sums[chunk][key] = sums[chunk].get(key, 0) + row[value_at]
            return sums

        # Per chunk: balance change by customer (a customer whose units changed is bumped
        # in the feed too), units by (customer, type), stock change by (node, product).
        balances = chunk_sums("billing_balancemovement", ("customer_id",), "amount")
        units = chunk_sums("billing_unitmovement", ("customer_id", "unit_type"), "quantity")
        stock = chunk_sums("inventory_stockmovement", ("node_id", "product_id"), "quantity")
        for chunk_balances, chunk_units in zip(balances, units, strict=True):
            for customer, _unit_type in chunk_units:
                chunk_balances.setdefault((customer,), Decimal(0))

        def table_copy(table: str, where: str = "", replace: dict[str, str] | None = None, args=None) -> str:
            name = f"bench_ceiling_{table}"
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING ALL)")
            scratch.append(name)
            if where:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " AND is_generated = 'NEVER' ORDER BY ordinal_position",
                    [table],
                )
                names = [row[0] for row in cur.fetchall()]
                values = ", ".join((replace or {}).get(n, n) for n in names)
                cur.execute(f"INSERT INTO {name} ({', '.join(names)}) SELECT {values} FROM {table} {where}", args)
            return name

        for table in CEILING_APPENDED:
            table_copy(table)
        sale_table = table_copy("sales_sale", "WHERE id = ANY(%s)", CEILING_SALE_BEFORE, [sale_ids])
        customer_table = table_copy(
            "billing_customer", "WHERE id IN (SELECT customer_id FROM sales_sale WHERE id = ANY(%s))", None, [sale_ids]
        )
        stock_table = table_copy("inventory_nodestock", "WHERE true")
        unit_table = table_copy("billing_unitbalance", "WHERE true")
        cur.execute(f"ANALYZE {sale_table}")
        cur.execute(f"ANALYZE {customer_table}")
        cur.execute("SELECT coalesce(max(change_seq), 0) FROM billing_customer")
        seq = cur.fetchone()[0]
    pg.commit()
    times: list[float] = []
    # Seconds by step over all chunks: where the ceiling's time goes.
    steps: dict[str, float] = {}

    def step(name: str, started: float) -> float:
        now = time.perf_counter()
        steps[name] = steps.get(name, 0.0) + now - started
        return now

    try:
        for chunk in range(chunks):
            seq += 1
            t0 = time.perf_counter()
            with pg.transaction(), pg.cursor() as cur:
                ids, reconciled, resolution, prefix, number, source = zip(*sale_rows[chunk], strict=True)
                mark = t0
                cur.execute(
                    f"UPDATE {sale_table} t SET reconciled_at = v.reconciled_at,"
                    " invoice_resolution_id = v.resolution, invoice_prefix = v.prefix,"
                    " invoice_number = v.number, invoice_source = v.source"
                    " FROM unnest(%s::uuid[], %s::timestamptz[], %s::bigint[], %s::text[], %s::bigint[], %s::text[])"
                    " AS v(id, reconciled_at, resolution, prefix, number, source) WHERE t.id = v.id",
                    [list(ids), list(reconciled), list(resolution), list(prefix), list(number), list(source)],
                )
                mark = step("sales_sale", mark)
                for table, (columns, rows) in appended.items():
                    if rows[chunk]:
                        with cur.copy(f"COPY bench_ceiling_{table} ({', '.join(columns)}) FROM STDIN") as copy:
                            for row in rows[chunk]:
                                copy.write_row(row)
                    mark = step(table, mark)
                if balances[chunk]:
                    cur.execute(
                        f"UPDATE {customer_table} t SET balance = t.balance + v.delta, change_seq = %s"
                        " FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, delta) WHERE t.id = v.id",
                        [seq, [k[0] for k in balances[chunk]], list(balances[chunk].values())],
                    )
                mark = step("billing_customer", mark)
                if stock[chunk]:
                    cur.execute(
                        f"UPDATE {stock_table} t SET quantity = t.quantity + v.delta, updated_at = now()"
                        " FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[]) AS v(node, product, delta)"
                        " WHERE t.node_id = v.node AND t.product_id = v.product",
                        [[k[0] for k in stock[chunk]], [k[1] for k in stock[chunk]], list(stock[chunk].values())],
                    )
                if units[chunk]:
                    cur.execute(
                        f"UPDATE {unit_table} t SET quantity = t.quantity + v.delta"
                        " FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS v(customer, unit_type, delta)"
                        " WHERE t.customer_id = v.customer AND t.unit_type = v.unit_type",
                        [[k[0] for k in units[chunk]], [k[1] for k in units[chunk]], list(units[chunk].values())],
                    )
                mark = step("node stock, unit balances", mark)
            step("commit", mark)
            times.append(time.perf_counter() - t0)
    finally:
        with pg.cursor() as cur:
            for name in scratch:
                cur.execute(f"DROP TABLE IF EXISTS {name}")
        pg.commit()
    seconds = sum(times)
    rows_written = sum(len(r) for _c, rows in appended.values() for r in rows) + len(sale_ids)
    return {
        "sales": len(sale_ids),
        "chunks": chunks,
        "appended_rows": {table: sum(len(r) for r in rows) for table, (_c, rows) in appended.items()},
        "customers_changed": sum(len(b) for b in balances),
        "rows_written": rows_written,
        "seconds": seconds,
        "sales_per_s": len(sale_ids) / seconds,
        "chunk_ms_median": median(times) * 1000,
        "ms_per_chunk_by_step": {name: seconds * 1000 / chunks for name, seconds in steps.items()},
    }


def naive_baseline(batches: list, fixture: Fixture, count: int) -> dict:
    """Each sale, line and payment saved with its own ORM ``save()``, one transaction per
    sale, same rows as the ingest run (new ids). Products and customers are looked up in
    memory (free), so this is a generous baseline. Rows are deleted afterwards."""
    from django.db import transaction

    from sales.models import Payment, Sale, SaleLine

    products = {p.sku: p for p in fixture.products}
    customers = {c.code: c for c in fixture.customers}
    terminals = {t.pk: t for t, _ in fixture.terminals}
    sales = [(terminal_id, s) for terminal_id, _, _, body in batches for s in body["sales"]][:count]
    now = datetime.now(UTC)
    ids = []
    rows = 0
    t0 = time.perf_counter()
    for terminal_id, s in sales:
        occurred = datetime.fromisoformat(s["occurred_at"])
        total = sum(Decimal(li["quantity"]) * Decimal(li["unit_price"]) for li in s["lines"])
        with transaction.atomic():
            sale = Sale(
                id=uuid.uuid4(),
                institution_id=fixture.institution.pk,
                node_id=fixture.node.pk,
                terminal=terminals[terminal_id],
                customer=customers.get(s["customer"]) if s["customer"] else None,
                seq=s["seq"] + 10**9,
                occurred_at=occurred,
                received_at=now,
                business_date=occurred.astimezone(BOGOTA).date(),
                offline=True,
                total=total,
                payload_hash="naive",
                reconciled_at=now,
            )
            sale.save()
            for i, li in enumerate(s["lines"]):
                SaleLine(
                    sale=sale,
                    position=i,
                    product=products[li["sku"]],
                    quantity=Decimal(li["quantity"]),
                    unit_price=Decimal(li["unit_price"]),
                    total=Decimal(li["quantity"]) * Decimal(li["unit_price"]),
                ).save()
            for i, p in enumerate(s["payments"]):
                Payment(
                    sale=sale,
                    position=i,
                    method=p["method"],
                    amount=Decimal(p["amount"]),
                    unit_type=p.get("unit_type", ""),
                ).save()
        ids.append(sale.id)
        rows += 1 + len(s["lines"]) + len(s["payments"])
    seconds = time.perf_counter() - t0
    Sale.objects.filter(pk__in=ids).delete()
    return {
        "sales": len(sales),
        "rows": rows,
        "seconds": seconds,
        "sales_per_s": len(sales) / seconds,
        "rows_per_s": rows / seconds,
    }


# --- Balances ---------------------------------------------------------------------------


def balances_institution(size: int, rng: random.Random) -> tuple[int, str]:
    """An institution with ``size`` customers (COPY), 1 % with a block, 5 % with units."""
    from django.db import connection

    from billing.models import BalanceFeed
    from inventory.models import Product
    from nodes.keys import terminal_key_rotate
    from nodes.models import Institution, Node, Terminal

    inst = Institution.objects.create(code=f"BAL{size}", name=f"Institución {size}")
    node = Node.objects.create(institution=inst, code=f"BAL{size}-N1", name="Nodo")
    terminal = Terminal.objects.create(node=node, code=f"BAL{size}-CAJA", name="Caja")
    key = terminal_key_rotate(terminal=terminal)
    product = Product.objects.create(institution=inst, sku="SKU-BLOQ", name="Bloqueado", price=Decimal(1000))
    BalanceFeed.objects.get_or_create(institution=inst)
    connection.ensure_connection()
    pg = connection.connection
    with pg.cursor() as cur:
        with cur.copy(
            "COPY billing_customer (institution_id, code, name, active, overdraft_limit, daily_max, balance,"
            " change_seq) FROM STDIN"
        ) as copy:
            buf = io.StringIO()
            for i in range(size):
                daily = "50000.00" if i % 7 == 0 else "\\N"
                buf.write(
                    f"{inst.pk}\tC-{i:07d}\tCliente Número {i} Apellido\tt\t{rng.choice(['0.00', '5000.00'])}"
                    f"\t{daily}\t{rng.randint(0, 200000)}.00\t0\n"
                )
            copy.write(buf.getvalue())
        cur.execute(
            "INSERT INTO billing_productblock (customer_id, product_id, created_at)"
            " SELECT id, %s, now() FROM billing_customer WHERE institution_id = %s AND id %% 100 = 0",
            [product.pk, inst.pk],
        )
        cur.execute(
            "INSERT INTO billing_unitbalance (customer_id, unit_type, quantity) SELECT id, 'ALMUERZO', 10"
            " FROM billing_customer WHERE institution_id = %s AND id %% 20 = 0",
            [inst.pk],
        )
    pg.commit()
    # The tables as a terminal meets them in production: vacuumed (hint bits and visibility
    # map set), not being vacuumed by autovacuum while the snapshot is measured. Django
    # keeps the driver connection in autocommit mode, which VACUUM needs.
    with pg.cursor() as cur:
        cur.execute("VACUUM ANALYZE billing_customer, billing_productblock, billing_unitbalance")
    return inst.pk, key


def balances_snapshot(client, url: str, limit: int | None = None) -> dict:
    """Every page of a full snapshot, as a terminal pulls it: each page parsed (with orjson)
    before the next is asked for with its cursor. Wall time, and the CPU time of the client
    and of the server processes (gunicorn; PostgreSQL when started here)."""
    import orjson

    params = {"limit": limit} if limit else {}
    bodies = []
    pages = customers = 0
    web0, server0, client0 = cpu_seconds(WEB_ROOTS), cpu_seconds(SERVER_ROOTS), time.process_time()
    t0 = time.perf_counter()
    r = client.get(f"{url}/api/v1/pos/balances", params=params)
    while True:
        assert r.status_code == 200, r.text[:200]
        # A terminal parses with a fast JSON parser too; the stdlib's would add
        # ~20 ms of client time per 1 MB page to what is meant as server time.
        data = orjson.loads(r.content)
        bodies.append(r.content)
        pages += 1
        customers += len(data["customers"])
        if not data["has_more"]:
            break
        r = client.get(f"{url}/api/v1/pos/balances", params={**params, "cursor": data["cursor"]})
    seconds = time.perf_counter() - t0
    client_cpu = time.process_time() - client0
    web_cpu, server_cpu = cpu_seconds(WEB_ROOTS) - web0, cpu_seconds(SERVER_ROOTS) - server0
    return {
        "seconds": seconds,
        "pages": pages,
        "customers": customers,
        "cursor": data["cursor"],
        "bodies": bodies,
        "client_cpu_s": client_cpu,
        "web_cpu_s": web_cpu,
        "postgres_cpu_s": server_cpu - web_cpu if SERVER_ROOTS[1:] else None,
    }


def balances_bench(url: str, size: int, reps: int, delta_reps: int, rng: random.Random) -> dict:
    import httpx
    import orjson
    from django.utils import timezone

    from billing.ledger import balance_movements_post
    from billing.models import BalanceMovement, BalanceMovementKind, Customer
    from billing.selectors import BALANCES_MAX_LIMIT

    institution_id, key = balances_institution(size, rng)
    headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "identity"}
    snapshots, max_limit = [], []
    # The client is this process, which holds Django, the fixture and what the earlier
    # measurements left (~700,000 objects the cycle collector tracks); a terminal holds none
    # of them. Parsing a page creates ~15,000 containers, enough to start full collections,
    # which then walked all of that (~8 ms of client CPU a page). Frozen, they are left out;
    # the parse and the collections of what it creates are still measured.
    gc.collect()
    gc.freeze()
    with httpx.Client(timeout=120, headers=headers) as client:
        for _ in range(reps):
            snapshot = balances_snapshot(client, url)
            assert snapshot["customers"] == size, (snapshot["customers"], size)
            snapshots.append(snapshot)
            bigger = balances_snapshot(client, url, BALANCES_MAX_LIMIT)
            assert bigger["customers"] == size, (bigger["customers"], size)
            max_limit.append(bigger)
        cursor = snapshots[-1]["cursor"]
        bodies = snapshots[0]["bodies"]
        for run in snapshots + max_limit:
            del run["bodies"]
        ids = list(Customer.objects.filter(institution_id=institution_id).values_list("pk", flat=True))
        deltas = []
        for _ in range(delta_reps):
            chosen = rng.sample(ids, 1000)
            now = timezone.now()
            # The real ledger service: one movement per customer, balances updated and the
            # feed bumped exactly as a top-up does.
            balance_movements_post(
                movements=[
                    BalanceMovement(
                        customer_id=pk, kind=BalanceMovementKind.TOPUP, amount=Decimal(1000), occurred_at=now
                    )
                    for pk in chosen
                ]
            )
            t0 = time.perf_counter()
            r = client.get(f"{url}/api/v1/pos/balances", params={"cursor": cursor})
            seconds = time.perf_counter() - t0
            data = orjson.loads(r.content)
            if r.status_code != 200 or data["full"] or len(data["customers"]) != 1000:
                raise SystemExit(f"unexpected delta: {r.status_code} full={data.get('full')}")
            cursor = data["cursor"]
            deltas.append({"seconds": seconds, "raw_bytes": len(r.content)})
    gc.unfreeze()

    def cpu_ms_per_page(runs: list[dict], key: str) -> float | None:
        values = [run[key] / run["pages"] * 1000 for run in runs if run[key] is not None]
        return median(values) if values else None

    return {
        "customers": size,
        "snapshot_s": median([s["seconds"] for s in snapshots]),
        "snapshot_pages": snapshots[0]["pages"],
        "snapshot_raw_bytes": sum(len(b) for b in bodies),
        "snapshot_gzip_bytes": sum(len(gzip.compress(b, 6)) for b in bodies),
        "snapshot_runs_s": [s["seconds"] for s in snapshots],
        "snapshot_cpu_ms_per_page": {
            "client": cpu_ms_per_page(snapshots, "client_cpu_s"),
            "web": cpu_ms_per_page(snapshots, "web_cpu_s"),
            "postgres": cpu_ms_per_page(snapshots, "postgres_cpu_s"),
        },
        "snapshot_max_limit": BALANCES_MAX_LIMIT,
        "snapshot_max_limit_s": median([s["seconds"] for s in max_limit]),
        "snapshot_max_limit_pages": max_limit[0]["pages"],
        "snapshot_max_limit_runs_s": [s["seconds"] for s in max_limit],
        "delta_1000_ms": median([d["seconds"] for d in deltas]) * 1000,
        "delta_runs_ms": [d["seconds"] * 1000 for d in deltas],
        "delta_raw_bytes": deltas[0]["raw_bytes"],
    }


def balances_all(url: str, sizes: list[int], reps: int, rng: random.Random) -> dict:
    out = {}
    for size in sizes:
        log(f"balances with {size} customers")
        out[str(size)] = balances_bench(url, size, max(reps, 3), 5, rng)
    return out


# --- History ----------------------------------------------------------------------------


def history_load(fixture: Fixture, count: int, rng: random.Random) -> dict:
    """COPY ``count`` reconciled sales (with lines and payments) of the past year, from
    eight extra terminals of the bench node, then VACUUM ANALYZE (what autovacuum would do)."""
    from django.db import connection

    from nodes.models import Terminal

    terminals = [
        Terminal.objects.create(node=fixture.node, code=f"BENCH-HIST-{i:02d}", name=f"Histórica {i}").pk
        for i in range(8)
    ]
    connection.ensure_connection()
    pg = connection.connection
    products = fixture.money_products
    customers = [c.pk for c in fixture.customers]
    start = datetime.now(UTC) - timedelta(days=366)
    t0 = time.perf_counter()
    chunk = 100_000
    seq = dict.fromkeys(terminals, 0)
    inst, node = fixture.institution.pk, fixture.node.pk
    NULL = "\\N"
    for begin in range(0, count, chunk):
        sales, lines, pays = io.StringIO(), io.StringIO(), io.StringIO()
        for i in range(begin, min(count, begin + chunk)):
            sid = uuid.UUID(int=rng.getrandbits(128), version=4)
            terminal = terminals[i % 8]
            seq[terminal] += 1
            occurred = start + timedelta(seconds=i * 30)
            customer = rng.choice(customers) if i % 5 else None
            total = 0
            for pos in range(1 + i % 4):
                p = products[(i + pos) % len(products)]
                total += int(p.price)
                lines.write(f"{sid}\t{pos}\t{p.pk}\t1.000\t{p.price}\t{p.price}\n")
            pays.write(f"{sid}\t0\t{'paygo' if customer else 'cash'}\t{total}.00\t\n")
            when = occurred.isoformat()
            sales.write(
                f"{sid}\t{inst}\t{node}\t{terminal}\t{customer or NULL}\t\\N\t{seq[terminal]}\t{when}\t{when}"
                f"\t{occurred.astimezone(BOGOTA).date()}\tt\t{total}.00\t\\N\t{sid.hex}{sid.hex}\t{when}"
                # Numbered by the register, as a year of real history is (an unnumbered
                # offline sale would be a backlog each reconcile chunk numbers first).
                f"\t\\N\tH{i % 8}\t{seq[terminal]}\tterminal\n"
            )
        with pg.cursor() as cur:
            with cur.copy(
                "COPY sales_sale (id, institution_id, node_id, terminal_id, customer_id, batch_id, seq, occurred_at,"
                " received_at, business_date, offline, total, known_balance, payload_hash, reconciled_at,"
                " invoice_resolution_id, invoice_prefix, invoice_number, invoice_source) FROM STDIN"
            ) as copy:
                copy.write(sales.getvalue())
            with cur.copy(
                "COPY sales_saleline (sale_id, position, product_id, quantity, unit_price, total) FROM STDIN"
            ) as copy:
                copy.write(lines.getvalue())
            with cur.copy("COPY sales_payment (sale_id, position, method, amount, unit_type) FROM STDIN") as copy:
                copy.write(pays.getvalue())
        pg.commit()
    load_s = time.perf_counter() - t0
    # Django keeps the driver connection in autocommit mode, which VACUUM needs.
    with pg.cursor() as cur:
        cur.execute("VACUUM ANALYZE sales_sale, sales_saleline, sales_payment")
        # Write out the load's dirty pages now, as after any bulk load: otherwise the
        # checkpoint falls inside the measured repetitions that follow and they pay for it.
        cur.execute("CHECKPOINT")
        cur.execute("SELECT count(*) FROM sales_sale")
        stored = cur.fetchone()[0]
    return {"sales_loaded": count, "sales_stored": stored, "load_s": load_s, "total_s": time.perf_counter() - t0}


def database_clone(db_url: str, suffix: str) -> str:
    """Create a copy of the benchmark database (``CREATE DATABASE … TEMPLATE``, which needs
    no other session on it) and return its URL."""
    import psycopg
    from django.db import connections

    connections.close_all()
    head, name = db_url.rsplit("/", 1)
    clone = f"{name}_{suffix}"
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{clone}"')
        admin.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{name}"')
    return f"{head}/{clone}"


@contextlib.contextmanager
def database(db_url: str):
    """Point this process's Django connection at another database of the same server."""
    from django.db import connection

    previous = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = db_url.rsplit("/", 1)[1]
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = previous


def serving(gunicorn: Gunicorn) -> None:
    """Count the CPU of this gunicorn's workers as the web server's (PostgreSQL's stays)."""
    SERVER_ROOTS[0] = gunicorn.proc.pid
    WEB_ROOTS[:] = [gunicorn.proc.pid]


def history_paired(
    empty: Gunicorn, history: Gunicorn, history_url: str, fixture: Fixture, *, reps: int, batches: int, uploaders: int
) -> tuple[list[dict], list[dict], list[float]]:
    """``reps`` pairs of ingest repetitions, one on the database with the history and one
    on the empty one (each reconciled after), and the ratio of their rates per pair.

    The two databases are copies made from one fixture, each behind its own gunicorn, so
    the same terminals' batches go to either. Taken one right after the other, a pair sees
    the same machine: this VM's speed drifts by up to 2× within minutes, which between
    repetitions run minutes apart was larger than the effect of the history itself."""
    history_runs, history_reconcile, ratios = [], [], []
    for rep in range(reps):
        serving(history)
        one = ingest_reps(history.url, fixture, reps=1, batches=batches, uploaders=uploaders, label="history")
        with database(history_url):
            rec = reconcile_all()
        log(f"history reconcile rep {rep + 1}: {rec['sales']} sales, {rec['sales_per_s']:.0f} sales/s")
        serving(empty)
        pair = ingest_reps(empty.url, fixture, reps=1, batches=batches, uploaders=uploaders, label="  empty beside it")
        reconcile_all()
        ratio = one["runs"][0]["sales_per_s"] / pair["runs"][0]["sales_per_s"]
        log(f"  history / empty: {ratio:.2f}")
        history_runs.extend(one["runs"])
        history_reconcile.append(rec)
        ratios.append(ratio)
    return history_runs, history_reconcile, ratios


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (about 1-2 minutes)")
    parser.add_argument(
        "--database-url",
        help="use this (throwaway!) PostgreSQL database instead of starting one; its user must be able to create"
        " databases (the history goes into a copy, <name>_history)",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    parser.add_argument("--uploaders", type=int, default=4, help="concurrent uploaders (default 4)")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=3000,
        help="sales/s the uploaders send together in the paced latency run (default 3000, the target)",
    )
    parser.add_argument("--batches", type=int, help="batches of 500 sales per ingest repetition (default 40; quick 12)")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement (default 3; quick 1)")
    parser.add_argument("--history", type=int, help="sales stored for the history run (default 1000000; quick 100000)")
    parser.add_argument("--naive", type=int, help="sales saved by the naive baseline (default 3000; quick 500)")
    parser.add_argument("--sizes", default=None, help="balance snapshot sizes (default 10000,100000; quick 10000)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--pg-port", type=int, default=PG_PORT, help=f"port of the PostgreSQL started here ({PG_PORT})")
    parser.add_argument("--redis-port", type=int, default=REDIS_PORT, help=f"redis-server port (default {REDIS_PORT})")
    parser.add_argument("--port", type=int, help="gunicorn port (default: a free one)")
    parser.add_argument(
        "--ingest-only", action="store_true", help="only the ingest repetitions, without reconciling between them"
    )
    parser.add_argument("--balances-only", action="store_true", help="only the balance snapshot and delta feed")
    args = parser.parse_args()
    quick = args.quick
    batches = args.batches or (12 if quick else 40)
    reps = args.reps or (1 if quick else 3)
    history = args.history if args.history is not None else (100_000 if quick else 1_000_000)
    naive_count = args.naive or (500 if quick else 3000)
    sizes = [int(s) for s in (args.sizes or ("10000" if quick else "10000,100000")).split(",")]

    rng = random.Random(20261128)
    workdir = Path(tempfile.mkdtemp(prefix="paygo-bench-"))
    os.chmod(workdir, 0o777)
    services = Services(workdir, need_postgres=not args.database_url, pg_port=args.pg_port, redis_port=args.redis_port)
    gunicorn = gunicorn_history = None
    try:
        started = time.perf_counter()
        db_url = args.database_url or services.start_postgres()
        broker = services.start_redis()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "paygo.settings",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "PAYGO_LOG_LEVEL": "WARNING",
        }
        if broker:
            env["CELERY_BROKER_URL"] = broker
        os.environ.update({k: v for k, v in env.items() if k != "CELERY_BROKER_URL"})
        # In this process Celery stays eager (no broker): nothing here enqueues anyway.
        os.environ.pop("CELERY_BROKER_URL", None)
        import django

        django.setup()
        from django.core.management import call_command

        log("migrating")
        call_command("migrate", verbosity=0)
        info = machine_info()
        info["load_average_at_start"] = load_average()
        log(f"machine: {info['cpu_model']}, {info['cpu_cores']} cores, {info['ram_gb']} GB, PG {info['postgresql']}")
        fixture = Fixture(terminals=8, customers=5000, rng=rng)
        history_url = None
        if not (args.balances_only or args.ingest_only):
            # A copy of the fixture's database gets the history now, so that its ingest
            # repetitions can run beside the empty database's (history_paired).
            history_url = database_clone(db_url, "history")
            log(f"loading {history} historical sales with COPY (into a copy of the database)")
            with database(history_url):
                history_loaded = history_load(fixture, history, rng)
            log(f"history loaded in {history_loaded['total_s']:.0f} s")
        gunicorn = Gunicorn(env, args.workers, workdir, port=args.port)
        gunicorn.wait_ready(fixture.terminals[0][1])
        SERVER_ROOTS[:] = [gunicorn.proc.pid, *postmaster_pid(services)]
        WEB_ROOTS[:] = [gunicorn.proc.pid]
        log(f"gunicorn ({args.workers} sync workers) at {gunicorn.url}; broker {broker or 'none (eager!)'}")
        if history_url:
            gunicorn_history = Gunicorn({**env, "DATABASE_URL": history_url}, args.workers, workdir)
            gunicorn_history.wait_ready(fixture.terminals[0][1])
            serving(gunicorn_history)
            ingest_run(gunicorn_history.url, fixture.batches(args.uploaders, 500), args.uploaders)  # warm-up
            with database(history_url):
                reconcile_all()
            serving(gunicorn)

        if args.balances_only:
            results = {"machine": info, "parameters": {"gunicorn_workers": args.workers, "balance_sizes": sizes}}
            results["balances"] = balances_all(gunicorn.url, sizes, reps, rng)
            results["machine"]["load_average_at_end"] = load_average()
            results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            Path(args.output).write_text(json.dumps({**results, "partial": True}, indent=2, default=str) + "\n")
            print_balances(results["balances"])
            return
        # Warm-up: one batch per uploader (connections, imports, caches), not measured.
        ingest_run(gunicorn.url, fixture.batches(args.uploaders, 500), args.uploaders)
        if not args.ingest_only:
            reconcile_all()
        tables_analyze()

        results: dict = {"machine": info}
        results["parameters"] = {
            "quick": quick,
            "gunicorn_workers": args.workers,
            "uploaders": args.uploaders,
            "batch_size": 500,
            "batches_per_rep": batches,
            "reps": reps,
            "history_sales": history,
            "naive_sales": naive_count,
            "balance_sizes": sizes,
            "postgresql_settings": PG_SETTINGS if services.pg_started else "external (--database-url)",
            "broker": "redis (tasks published, not consumed)" if broker else "none",
        }
        ingest_runs, baseline_runs, reconcile_runs = ingest_then_reconcile(
            gunicorn.url, fixture, reps=reps, batches=batches, uploaders=args.uploaders, label="ingest",
            reconcile=not args.ingest_only,
            baselines=None if args.ingest_only else baselines_beside(fixture, naive_count),
        )  # fmt: skip
        results["ingest_empty"] = {
            "runs": ingest_runs,
            "sales_per_s": median([r["sales_per_s"] for r in ingest_runs]),
            "rows_per_s": median([r["rows_per_s"] for r in ingest_runs]),
            "p50_ms": median([r["p50_ms"] for r in ingest_runs]),
            "p95_ms": median([r["p95_ms"] for r in ingest_runs]),
            "server_cpu_ms_per_batch": median([r["server_cpu_ms_per_batch"] for r in ingest_runs]),
            "web_cpu_ms_per_batch": median([r["web_cpu_ms_per_batch"] for r in ingest_runs]),
            "postgres_cpu_ms_per_batch": median([r["postgres_cpu_ms_per_batch"] for r in ingest_runs]),
            "sales_per_server_cpu_s": median([r["sales_per_server_cpu_s"] or 0 for r in ingest_runs]),
        }
        # Latency of a lone batch: with 4 closed-loop uploaders the server always holds 4
        # batches, so their latency is set by throughput (Little's law); one uploader shows
        # what a terminal uploading alone waits. 40 batches (not 12): the p95 of 12 samples
        # is nearly their maximum, so one slow request decided it.
        single = ingest_run(gunicorn.url, fixture.batches(12 if quick else 40, 500), 1)
        log(
            f"one uploader: p50 {single['p50_ms']:.0f} ms, p95 {single['p95_ms']:.0f} ms; CPU per batch: web "
            f"{single['web_cpu_ms_per_batch']:.0f} ms, PostgreSQL {single['postgres_cpu_ms_per_batch']:.0f} ms"
        )
        results["ingest_single_uploader"] = single
        # The latency target at the throughput target: 4 uploaders sending 3,000 sales/s
        # between them on a schedule. The closed-loop repetitions above measure how much
        # the server can take; their latency is that throughput read backwards (Little's
        # law: 4 batches always in the server), not what a batch waits at a given load.
        paced = ingest_run(
            gunicorn.url, fixture.batches(12 if quick else 60, 500), args.uploaders, rate=args.paced_rate
        )
        log(
            f"{args.uploaders} uploaders at {args.paced_rate:.0f} sales/s: {paced['sales_per_s']:.0f} sales/s, "
            f"p50 {paced['p50_ms']:.0f} ms, p95 {paced['p95_ms']:.0f} ms; CPU per batch: web "
            f"{paced['web_cpu_ms_per_batch']:.0f} ms, PostgreSQL {paced['postgres_cpu_ms_per_batch']:.0f} ms"
        )
        results["ingest_paced"] = paced
        if not args.ingest_only:
            reconcile_all()
        results["reconcile"] = {
            "runs": reconcile_runs,
            "sales_per_s": median([r["sales_per_s"] for r in reconcile_runs]),
            "sales_per_cpu_s": median([r["sales_per_cpu_s"] or 0 for r in reconcile_runs]),
        }
        parallel = [r for r in reconcile_runs if "processes" in r]
        if parallel:
            results["reconcile"]["processes"] = RECONCILE_PROCESSES
            results["reconcile"]["processes_sales_per_s"] = median([r["processes"]["sales_per_s"] for r in parallel])
            results["reconcile"]["processes_vs_one_median"] = median([r["processes_vs_one"] for r in parallel])
        ceilings = [r["write_ceiling"] for r in reconcile_runs if "write_ceiling" in r]
        if ceilings:
            # Median of the per-repetition ratios, each against the ceiling run beside it.
            results["reconcile"]["write_ceiling_sales_per_s"] = median([c["sales_per_s"] for c in ceilings])
            results["reconcile"]["vs_write_ceiling_median"] = median([r["vs_write_ceiling"] for r in reconcile_runs])
        save_partial(args.output, results)
        if args.ingest_only:
            ingest = results["ingest_empty"]
            log(
                f"ingest (median of {reps}): {ingest['sales_per_s']:.0f} sales/s; CPU per batch: web "
                f"{ingest['web_cpu_ms_per_batch']:.0f} ms, PostgreSQL {ingest['postgres_cpu_ms_per_batch']:.0f} ms"
            )
            return
        results["copy_baseline"], results["naive_baseline"], results["baseline_ratios"] = baselines_summary(
            baseline_runs
        )
        results["balances"] = balances_all(gunicorn.url, sizes, reps, rng)
        save_partial(args.output, results)
        results["history_load"] = history_loaded
        hist_runs, hist_reconcile, hist_ratios = history_paired(
            gunicorn, gunicorn_history, history_url, fixture, reps=reps, batches=batches, uploaders=args.uploaders
        )
        results["reconcile_history"] = {
            "runs": hist_reconcile,
            "sales_per_s": median([r["sales_per_s"] for r in hist_reconcile]),
        }
        results["ingest_history"] = {
            "stored_sales_before": results["history_load"]["sales_stored"],
            "ratios_to_empty_beside": hist_ratios,
            "ratio_to_empty": median(hist_ratios),
            "runs": hist_runs,
            "sales_per_s": median([r["sales_per_s"] for r in hist_runs]),
            "p50_ms": median([r["p50_ms"] for r in hist_runs]),
            "p95_ms": median([r["p95_ms"] for r in hist_runs]),
            "server_cpu_ms_per_batch": median([r["server_cpu_ms_per_batch"] for r in hist_runs]),
            "sales_per_server_cpu_s": median([r["sales_per_server_cpu_s"] or 0 for r in hist_runs]),
        }
        results["targets"] = targets(results)
        results["elapsed_s"] = time.perf_counter() - started
        results["machine"]["load_average_at_end"] = load_average()
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        Path(args.output).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print_table(results)
        log(f"results written to {args.output} ({results['elapsed_s']:.0f} s)")
    finally:
        if gunicorn:
            gunicorn.stop()
        if gunicorn_history:
            gunicorn_history.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        services.stop()


def save_partial(path: str, results: dict) -> None:
    """Write what is measured so far, so a failure late in a long run loses nothing."""
    Path(path).write_text(json.dumps({**results, "partial": True}, indent=2, default=str) + "\n")


def targets(r: dict) -> list[dict]:
    ingest = r["ingest_empty"]
    ratios = r["baseline_ratios"]
    out = [
        ("ingest sales/s, 4 uploaders", ingest["sales_per_s"], ">=", 3000),
        # At the throughput target, sent on a schedule (ingest_run's rate): what a batch
        # waits at that load. The closed-loop latencies are in the table, not targets.
        ("batch p95 ms @3,000 sales/s", r["ingest_paced"]["p95_ms"], "<=", 300),
        # Median of the per-repetition ratios, each against baselines run beside it.
        ("ingest rows/s vs COPY", ratios["rows_vs_copy_median"], ">=", 0.15),
        ("ingest sales/s vs naive", ratios["sales_vs_naive_median"], ">=", 20),
        ("reconcile sales/s", r["reconcile"]["sales_per_s"], ">=", 5000),
    ]
    bal = r["balances"]
    if "100000" in bal:
        out.append(("snapshot 100k s", bal["100000"]["snapshot_s"], "<=", 1.5))
        out.append(("delta 1000 @100k ms", bal["100000"]["delta_1000_ms"], "<=", 50))
        if "10000" in bal:
            out.append(
                ("delta @100k / @10k", bal["100000"]["delta_1000_ms"] / bal["10000"]["delta_1000_ms"], "<=", 1.5)
            )
    # Median of the per-pair ratios, each history repetition against an empty one beside it.
    out.append(("history ingest / empty", r["ingest_history"]["ratio_to_empty"], ">=", 0.8))
    return [
        {
            "target": name,
            "measured": value,
            "op": op,
            "goal": goal,
            "met": value >= goal if op == ">=" else value <= goal,
        }
        for name, value, op, goal in out
    ]


def print_table(r: dict) -> None:
    ingest, hist, rec = r["ingest_empty"], r["ingest_history"], r["reconcile"]
    copy, naive = r["copy_baseline"], r["naive_baseline"]
    print()
    print(f"{'measurement':<44} {'value':>14}")
    print("-" * 60)
    rows = [
        ("ingest sales/s (empty DB)", f"{ingest['sales_per_s']:.0f}"),
        ("ingest rows/s (empty DB)", f"{ingest['rows_per_s']:.0f}"),
        ("batch latency p50 / p95 ms, closed loop", f"{ingest['p50_ms']:.0f} / {ingest['p95_ms']:.0f}"),
        (
            f"  at {r['ingest_paced']['paced_sales_per_s']:.0f} sales/s, paced: p50 / p95 ms",
            f"{r['ingest_paced']['p50_ms']:.0f} / {r['ingest_paced']['p95_ms']:.0f}",
        ),
        (
            "  one uploader alone: p50 / p95 ms",
            f"{r['ingest_single_uploader']['p50_ms']:.0f} / {r['ingest_single_uploader']['p95_ms']:.0f}",
        ),
        (f"ingest sales/s ({hist['stored_sales_before']:,} stored)", f"{hist['sales_per_s']:.0f}"),
        ("  p50 / p95 ms", f"{hist['p50_ms']:.0f} / {hist['p95_ms']:.0f}"),
        (
            "ingest server CPU ms per batch (empty | history)",
            f"{ingest['server_cpu_ms_per_batch']:.0f} | {hist['server_cpu_ms_per_batch']:.0f}",
        ),
        ("ingest sales per server CPU-second", f"{ingest['sales_per_server_cpu_s']:.0f}"),
        ("reconcile sales/s", f"{rec['sales_per_s']:.0f}"),
        (f"reconcile sales/s ({hist['stored_sales_before']:,} stored)", f"{r['reconcile_history']['sales_per_s']:.0f}"),
        ("reconcile sales per CPU-second", f"{rec['sales_per_cpu_s']:.0f}"),
        (
            f"reconcile sales/s, {rec.get('processes', '?')} processes (÷ one process)",
            f"{rec.get('processes_sales_per_s', 0):.0f} ({rec.get('processes_vs_one_median', 0):.2f})",
        ),
        (
            "reconcile write ceiling sales/s (reconcile ÷ it)",
            f"{rec['write_ceiling_sales_per_s']:.0f} ({rec['vs_write_ceiling_median']:.2f})",
        ),
        ("COPY baseline sales/s | rows/s", f"{copy['sales_per_s']:.0f} | {copy['rows_per_s']:.0f}"),
        ("naive ORM baseline sales/s | rows/s", f"{naive['sales_per_s']:.0f} | {naive['rows_per_s']:.0f}"),
    ]
    rows += balances_rows(r["balances"])
    for name, value in rows:
        print(f"{name:<44} {value:>14}")
    print()
    print(f"{'target':<32} {'measured':>10} {'goal':>10}  met")
    print("-" * 60)
    for t in r["targets"]:
        print(f"{t['target']:<32} {t['measured']:>10.2f} {t['op']}{t['goal']:>8}  {'yes' if t['met'] else 'NO'}")


def balances_rows(balances: dict) -> list[tuple[str, str]]:
    rows = []
    for size, b in balances.items():
        rows.append(
            (
                f"snapshot {int(size):,} customers s (raw/gzip kB)",
                f"{b['snapshot_s']:.2f} ({b['snapshot_raw_bytes'] // 1024}/{b['snapshot_gzip_bytes'] // 1024})",
            )
        )
        rows.append(
            (
                f"  at limit={b['snapshot_max_limit']:,} ({b['snapshot_max_limit_pages']} pages) s",
                f"{b['snapshot_max_limit_s']:.2f}",
            )
        )
        cpu = b["snapshot_cpu_ms_per_page"]
        rows.append(
            (
                "  CPU ms per 5,000-customer page: client/web/PG",
                "/".join("-" if cpu[k] is None else f"{cpu[k]:.0f}" for k in ("client", "web", "postgres")),
            )
        )
        rows.append((f"delta 1,000 changes @ {int(size):,} ms", f"{b['delta_1000_ms']:.1f}"))
    return rows


def print_balances(balances: dict) -> None:
    print()
    for name, value in balances_rows(balances):
        print(f"{name:<44} {value:>14}")
    for size, b in balances.items():
        runs = " · ".join(f"{s:.2f}" for s in b["snapshot_runs_s"])
        deltas = " · ".join(f"{d:.1f}" for d in b["delta_runs_ms"])
        print(f"  {int(size):,}: snapshot runs {runs} s; delta runs {deltas} ms")


if __name__ == "__main__":
    main()
