"""``bench/run.py`` runs end to end: a tiny run against the test PostgreSQL server.

Its figures are not judged here (times belong in the benchmark, not in tests). What is
checked is that every measurement still runs as the code under it changes, with the
benchmark's own checks inside: every sale ingested is reconciled, by one process and then
by the deployment's worker processes; the baselines and the write ceiling write what they
compare with; the results file holds every target.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bench_database_url():
    """A database of its own on the test server (the script migrates it and copies it
    for the history), dropped afterwards with that copy."""
    head = os.environ["DATABASE_URL"].split("?", 1)[0].rsplit("/", 1)[0]
    name = f"paygo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
            for database in (name, f"{name}_history"):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_a_tiny_benchmark_run_measures_everything(bench_database_url, tmp_path):
    output = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    run = subprocess.run(
        [
            sys.executable, "bench/run.py", "--quick", "--database-url", bench_database_url,
            "--batches", "4", "--history", "2000", "--naive", "50", "--sizes", "1000",
            "--redis-port", str(_free_port()), "--output", str(output),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    results = json.loads(output.read_text())
    assert "partial" not in results
    assert [t["target"] for t in results["targets"]] == [
        "ingest sales/s, 4 uploaders",
        "batch p95 ms @3,000 sales/s",
        "ingest rows/s vs COPY",
        "ingest sales/s vs naive",
        "reconcile sales/s",
        "history ingest / empty",
    ]
    assert all(t["measured"] > 0 for t in results["targets"])
    (rep,) = results["reconcile"]["runs"]
    # 4 batches of 500: the older half by one process, the rest by the worker processes.
    assert (rep["sales"], rep["processes"]["sales"], rep["processes"]["processes"]) == (1000, 1000, 2)
    assert rep["write_ceiling"]["sales"] == 2000
    assert rep["write_ceiling"]["rows_written"] > 2000
    assert results["copy_baseline"]["sales"] == 2000
    assert results["naive_baseline"]["sales"] == 50
    assert results["ingest_history"]["stored_sales_before"] >= 2000
    assert results["balances"]["1000"]["snapshot_pages"] == 1
