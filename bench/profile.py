"""Profile the two hot paths in-process with pyinstrument, on PostgreSQL.

    DATABASE_URL=postgres://… python bench/profile.py [--batches 4] [--html DIR]

Uses the benchmark's fixture (``bench/run.py``) in the given (throwaway!) database:
migrates it, uploads ``--batches`` batches of 500 sales through the Django test client
(the whole request path: middleware, key authentication, parsing, ingest, rendering)
and then reconciles them, printing a pyinstrument profile of each. Run it before and
after touching ingest or reconciliation to see where the time goes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
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


if __name__ == "__main__":
    main()
