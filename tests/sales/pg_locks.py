"""What PostgreSQL shows of row-lock waits, for the tests that race transactions."""

from __future__ import annotations

import time

from django.db import connection


def lock_waiters() -> int:
    """Sessions of the test database waiting for a lock now (read in autocommit: inside a
    transaction ``pg_stat_activity`` keeps the first reading)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def lock_waiters_wait(timeout: float = 10) -> int:
    """Wait up to ``timeout`` seconds for a session to wait for a lock; how many do."""
    deadline = time.monotonic() + timeout
    while lock_waiters() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    return lock_waiters()
