"""psycopg loaders the project installs on its PostgreSQL connections.

**timestamptz in C.** Django's psycopg backend reads every ``timestamptz`` through its own
loader (``psycopg_any.BaseTzLoader``), a subclass of psycopg's *Python* loader that parses
the text and then sets Django's ``tzinfo``: ~8 µs a value, against ~0.5 µs for psycopg's C
loader (``psycopg_binary``). A reconcile chunk reads a few thousand timestamps (sales,
movements, the walks), so that parse was ~4 % of its Python time.

Both give the same value when the session's ``TimeZone`` is UTC, which Django sets on every
connection when ``USE_TZ`` is on and ``DATABASES[…]["TIME_ZONE"]`` is unset (this project's
settings): the C loader converts to the session's zone, and for ``UTC`` psycopg's tzinfo is
``datetime.timezone.utc``, Django's own. :func:`timestamptz_loader_install` installs the C
loader only then; each loader instance checks the session zone again when it is created
(a cursor at a time) and keeps Django's parse if someone set another zone since.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db.backends.signals import connection_created

try:  # psycopg's C implementation (``psycopg[binary]`` in requirements.txt)
    from psycopg.adapt import Loader
    from psycopg_binary._psycopg import TimestamptzLoader as _CTimestamptzLoader
except ImportError:  # pragma: no cover - pure-Python psycopg or psycopg2: Django's loader stays
    _CTimestamptzLoader = None

UTC = datetime.UTC

if _CTimestamptzLoader is not None:
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    class _DjangoUtcLoader(BaseTzLoader):
        timezone = UTC

    class UtcTimestamptzLoader(Loader):
        """``timestamptz`` text → aware ``datetime`` in UTC, parsed by psycopg's C loader.

        The C class cannot be subclassed, so each instance binds its ``load`` to a C loader
        made for the same context. ``timezone`` is what Django's ``create_cursor`` compares
        with the connection's zone (equal: no per-cursor loader of its own)."""

        timezone = UTC

        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            connection = getattr(context, "connection", None)
            zone = connection.info.parameter_status("TimeZone") if connection is not None else None
            if zone == "UTC":
                self.load = _CTimestamptzLoader(oid, context).load
            else:
                self.load = _DjangoUtcLoader(oid, context).load

        def load(self, data: Any) -> datetime.datetime:  # replaced per instance in __init__
            raise NotImplementedError


def timestamptz_loader_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On a new PostgreSQL connection in UTC, read ``timestamptz`` with the C loader."""
    if _CTimestamptzLoader is None or connection.vendor != "postgresql" or not settings.USE_TZ:
        return
    if connection.timezone is not UTC:
        return
    raw = connection.connection
    if not hasattr(raw, "adapters") or raw.info.parameter_status("TimeZone") != "UTC":
        return
    raw.adapters.register_loader("timestamptz", UtcTimestamptzLoader)


def adapters_connect() -> None:
    connection_created.connect(timestamptz_loader_install, dispatch_uid="paygo.timestamptz_loader")
