"""Profile the hot paths in-process with pyinstrument, on PostgreSQL.

    DATABASE_URL=postgres://… python bench/profile.py [--batches 4] [--html DIR]
    DATABASE_URL=postgres://… python bench/profile.py --balances [--customers 100000]

Uses the benchmark's fixture (``bench/run.py``) in the given (throwaway!) database:
migrates it, uploads ``--batches`` batches of 500 sales through the Django test client
(the whole request path: middleware, key authentication, parsing, ingest, rendering)
and then reconciles them, printing a pyinstrument profile of each. Run it before and
after touching ingest or reconciliation to see where the time goes.

``--balances`` profiles the balance feed instead: an institution of ``--customers``
customers loaded with COPY as ``bench/run.py`` does, then one 5,000-customer snapshot page
(from the middle of the snapshot) and one delta page of 1,000 changes, each through the
test client, with the median time of several unprofiled pulls and a pyinstrument profile.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--small-tasks", type=int, default=40, help="small reconcile tasks to profile (default 40)")
    parser.add_argument("--small-size", type=int, default=15, help="sales per small task (default 15)")
    parser.add_argument("--html", help="also write HTML profiles to this directory")
    parser.add_argument("--balances", action="store_true", help="profile the balance feed instead")
    parser.add_argument("--customers", type=int, default=100_000, help="customers for --balances (default 100000)")
    parser.add_argument(
        "--statements", action="store_true", help="time each SQL statement of the large reconcile instead of profiling"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("DATABASE_URL must point to a throwaway PostgreSQL database")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paygo.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "profile-" + uuid.uuid4().hex)
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("PAYGO_LOG_LEVEL", "WARNING")
    os.environ.pop("CELERY_BROKER_URL", None)

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from pyinstrument import Profiler
    from run import Fixture  # bench/run.py

    from sales import tasks
    from sales.reconcile import sales_reconcile

    call_command("migrate", verbosity=0)
    if args.balances:
        balances_profile(args.customers, args.html)
        return
    fixture = Fixture(terminals=8, customers=5000, rng=random.Random(7))
    # Reconciliation is profiled on its own below, not inside the upload requests.
    tasks.sales_reconcile_enqueue = lambda **kwargs: None
    client = Client()
    warm = fixture.batches(1, 500)

    def upload(key: str, body: bytes) -> None:
        response = client.post(
            "/api/v1/pos/sales/batches", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert response.status_code == 200, response.content[:500]

    for _terminal, key, body, _ in warm:
        upload(key, body)

    batches = fixture.batches(args.batches, 500)
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _terminal, key, body, _ in batches:
        upload(key, body)
    profiler.stop()
    elapsed = time.perf_counter() - started
    per_batch = elapsed / args.batches * 1000
    print(f"\n=== ingest: {args.batches} batches of 500 in {elapsed:.2f} s ({per_batch:.0f} ms/batch)")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        Path(args.html).mkdir(parents=True, exist_ok=True)
        Path(args.html, "ingest.html").write_text(profiler.output_html())

    sales_reconcile(max_chunks=1)  # warm-up chunk
    if args.statements:
        statements_timed(lambda: sales_reconcile(max_chunks=1000), "reconcile")
        return
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    count = sales_reconcile(max_chunks=1000)
    profiler.stop()
    elapsed = time.perf_counter() - started
    print(f"\n=== reconcile: {count} sales in {elapsed:.2f} s ({count / elapsed:.0f} sales/s)")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        Path(args.html, "reconcile.html").write_text(profiler.output_html())

    # Many small tasks, as terminals uploading every few seconds cause (one task per batch).
    small = fixture.batches(args.small_tasks, args.small_size)
    for _terminal, key, body, _ in small:
        upload(key, body)
    ids = [[sale["id"] for sale in raw["sales"]] for *_, raw in small]
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    count = sum(sales_reconcile(sale_ids=chunk) for chunk in ids)
    profiler.stop()
    elapsed = time.perf_counter() - started
    print(
        f"\n=== reconcile in {len(ids)} tasks of {args.small_size}: {count} sales in {elapsed:.2f} s "
        f"({elapsed / len(ids) * 1000:.0f} ms/task, {count / elapsed:.0f} sales/s)"
    )
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def statements_timed(run, label: str) -> None:
    """Run ``run()`` timing every SQL statement, grouped by the project function that sent
    it; prints the groups by total time, then the wall and process CPU time of the run."""
    import traceback
    from collections import defaultdict

    from django.db import connection

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def caller() -> str:
        for frame in reversed(traceback.extract_stack(limit=40)[:-3]):
            if "/django/" not in frame.filename and "/bench/" not in frame.filename:
                return f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.name}:{frame.lineno}"
        return "?"

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = totals[f"{caller()} {' '.join(sql.split())[:60]}"]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    started, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(timed):
        count = run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    sql = sum(seconds for _, seconds in totals.values())
    print(
        f"\n=== {label}: {count} sales in {elapsed:.2f} s ({count / elapsed:.0f} sales/s); SQL {sql:.2f} s, "
        f"Python CPU {cpu:.2f} s"
    )
    for key, (calls, seconds) in sorted(totals.items(), key=lambda item: -item[1][1])[:30]:
        print(f"{seconds * 1000:9.0f} ms {calls:6d}x  {key}")


def balances_profile(customers: int, html: str | None) -> None:
    """Time and profile one snapshot page and one 1,000-change delta page."""
    import statistics

    from django.test import Client
    from django.utils import timezone
    from orjson import loads as orjson_loads
    from pyinstrument import Profiler
    from run import balances_institution  # bench/run.py

    from billing.ledger import balance_movements_post
    from billing.models import BalanceMovement, BalanceMovementKind, Customer

    rng = random.Random(11)
    institution_id, key = balances_institution(customers, rng)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def pull(cursor: str | None = None) -> tuple[dict, float, int]:
        started = time.perf_counter()
        response = client.get("/api/v1/pos/balances", {"cursor": cursor} if cursor else {})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:500]
        return orjson_loads(response.content), elapsed, len(response.content)

    # Walk the whole snapshot once (timing each page), keep a cursor from its middle.
    page, _, _ = pull()
    cursors, times = [], []
    while page["has_more"]:
        cursors.append(page["cursor"])
        page, seconds, size = pull(page["cursor"])
        times.append(seconds)
    end_cursor = page["cursor"]
    middle = cursors[len(cursors) // 2] if cursors else None
    print(
        f"\n=== snapshot of {customers:,} customers: {len(times) + 1} pages, "
        f"{sum(times):.2f} s after the first page, page median {statistics.median(times or [0]) * 1000:.1f} ms"
    )
    runs = [pull(middle)[1] for _ in range(5)]
    print(f"    one middle page: median {statistics.median(runs) * 1000:.1f} ms of {[round(r * 1000) for r in runs]}")
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(3):
        pull(middle)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if html:
        Path(html).mkdir(parents=True, exist_ok=True)
        Path(html, "balances_snapshot.html").write_text(profiler.output_html())

    ids = list(Customer.objects.filter(institution_id=institution_id).values_list("pk", flat=True))
    balance_movements_post(
        movements=[
            BalanceMovement(
                customer_id=pk, kind=BalanceMovementKind.TOPUP, amount=Decimal(1000), occurred_at=timezone.now()
            )
            for pk in rng.sample(ids, 1000)
        ]
    )
    delta, _, size = pull(end_cursor)
    assert not delta["full"]
    assert len(delta["customers"]) == 1000, len(delta["customers"])
    runs = [pull(end_cursor)[1] for _ in range(7)]
    print(
        f"\n=== delta of 1,000 changes at {customers:,} customers ({size // 1024} kB): "
        f"median {statistics.median(runs) * 1000:.1f} ms of {[round(r * 1000, 1) for r in runs]}"
    )
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(5):
        pull(end_cursor)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if html:
        Path(html, "balances_delta.html").write_text(profiler.output_html())


if __name__ == "__main__":
    main()
