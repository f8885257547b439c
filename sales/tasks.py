"""Celery tasks of the sales app.

Placeholder on the ingest branch: reconciliation plugs in here. The ingest service calls
``sales_reconcile_enqueue`` on commit with the ids of the sales it stored; the real
implementation (owned by reconciliation) replaces this file.
"""


def sales_reconcile_enqueue(*, sale_ids: list[str]) -> None:
    """Enqueue reconciliation of ``sale_ids`` (called after commit). Does nothing yet."""
