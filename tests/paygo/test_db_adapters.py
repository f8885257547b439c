"""The C ``timestamptz`` loader gives exactly what Django's own loader gives."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from paygo.db_adapters import UtcTimestamptzLoader

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUES_SQL = (
    "SELECT '2026-01-01 10:00:00.123456-05'::timestamptz, '1999-12-31 23:59:59+00'::timestamptz,"
    " '2026-06-30 00:00:00.000001+14'::timestamptz, NULL::timestamptz"
)
EXPECTED = (
    datetime.datetime(2026, 1, 1, 15, 0, 0, 123456, tzinfo=datetime.UTC),
    datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC),
    datetime.datetime(2026, 6, 29, 10, 0, 0, 1, tzinfo=datetime.UTC),
    None,
)


def test_connections_read_timestamptz_with_the_c_loader_in_utc():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(1184, 0)  # timestamptz, text
    assert loader is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute(VALUES_SQL)
        row = cursor.fetchone()
    assert row == EXPECTED
    assert all(value.tzinfo is datetime.UTC for value in row[:3])


def test_another_session_zone_keeps_djangos_own_parse():
    """In a session zone other than UTC the loader reads exactly as Django's does
    (which labels the session's wall time UTC); the project never sets one."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/Bogota'")
        try:
            cursor.execute(VALUES_SQL)
            ours = cursor.fetchone()
            register_tzloader(datetime.UTC, cursor.cursor)
            cursor.execute(VALUES_SQL)
            djangos = cursor.fetchone()
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert ours == djangos
    assert all(value.tzinfo is datetime.UTC for value in ours[:3])
