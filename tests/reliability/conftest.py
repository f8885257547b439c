"""Fixtures of the reliability suite: a production-like stack built once per session on the
test PostgreSQL server (its own database, dropped at the end), plus per-test processes."""

from __future__ import annotations

import os

import pytest

from tests.conftest import _missing
from tests.reliability.stack import Gunicorn, RelDatabase, production_env


def _needs_postgres() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        _missing("needs PostgreSQL: set DATABASE_URL (scripts/with_services starts one)")


def _needs_redis() -> str:
    url = os.environ.get("PAYGO_TEST_REDIS_URL", "")
    if not url:
        _missing("needs redis-server: set PAYGO_TEST_REDIS_URL (scripts/with_services starts one)")
    return url


def rel_database(tmp_path_factory, name: str):
    """Yield a new ``paygo_rel_<random>`` database, migrated and seeded under production
    settings, and drop it afterwards (the body of the ``rel_db`` fixtures)."""
    _needs_postgres()
    database = RelDatabase(tmp_path_factory.mktemp(name))
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(scope="session")
def rel_db(tmp_path_factory):
    """The stack's database for the session (see :func:`rel_database`)."""
    yield from rel_database(tmp_path_factory, "rel-stack")


@pytest.fixture
def rel_broker_url(rel_db) -> str:
    """A Redis database number of the test redis-server, emptied for this test."""
    import redis

    url = _needs_redis().rstrip("/") + "/7"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def rel_env(rel_db, rel_broker_url):
    """Production-like environment: DEBUG off, random secret, the stack's database and broker."""
    return production_env(rel_db.url, static_root=rel_db.static_root, CELERY_BROKER_URL=rel_broker_url)


@pytest.fixture
def gunicorn_factory(tmp_path):
    started: list[Gunicorn] = []

    def start(env, *, workers: int = 2, name: str = "gunicorn") -> Gunicorn:
        server = Gunicorn(env, tmp_path / f"{name}-{len(started)}.log", workers=workers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def terminals(rel_db):
    """The demo's terminal keys by code."""
    return {terminal["code"]: terminal["key"] for terminal in rel_db.demo["terminals"]}
