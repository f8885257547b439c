"""Celery tasks of the sales app: reconciliation, its enqueueing on commit, the sweep.

Tasks take ids, call one service, and are safe to run twice (DESIGN principle 3):
late acknowledgement and ``task_reject_on_worker_lost`` (settings) redeliver a task whose
worker died, and the periodic sweep re-enqueues whatever a lost message left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from sales import reconcile as reconcile_service
from sales.reconcile import RECONCILE_CHUNK_SIZE, unreconciled_sale_ids

logger = logging.getLogger(__name__)

# Database hiccups (restart, failover, deadlock victim, "database is locked") are worth
# retrying; everything in a reconcile chunk rolls back, so a retry starts clean.
RETRYABLE = (OperationalError, InterfaceError)
SWEEP_MAX_SALES = 50 * RECONCILE_CHUNK_SIZE


@shared_task(
    name="sales.tasks.sales_reconcile",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,
)
def sales_reconcile(sale_ids: list[str] | None = None) -> int:
    """Reconcile the sales with these ids, or every unreconciled sale when None.

    Calls :func:`sales.reconcile.sales_reconcile` (locks: the sales ``FOR NO KEY UPDATE SKIP
    LOCKED``, then their nodes and customers). Idempotent: reconciled sales are skipped.
    Side effects: ledger movements, materialized stock and balances, flags, comandas,
    sequence gaps, ``reconciled_at``.
    """
    # At most 20 chunks (20,000 sales, well inside the soft time limit); the sweep
    # enqueues whatever an "all unreconciled" run leaves. A chunk of a few ids is filled up
    # with other waiting sales (``fill``): many small uploads share one chunk's cost.
    return reconcile_service.sales_reconcile(sale_ids=sale_ids, max_chunks=20, fill=True)


def _publish(sale_ids: list[str]) -> None:
    for start in range(0, len(sale_ids), RECONCILE_CHUNK_SIZE):
        chunk = sale_ids[start : start + RECONCILE_CHUNK_SIZE]
        try:
            sales_reconcile.apply_async(kwargs={"sale_ids": chunk})
        except Exception:
            # Broker down or the eager run failed: the sales stay unreconciled and the
            # periodic sweep enqueues them again. An upload must never fail for this.
            logger.warning("could not enqueue reconciliation of %d sales; the sweep will", len(chunk), exc_info=True)


def sales_reconcile_enqueue(*, sale_ids: Iterable[UUID | str]) -> None:
    """Enqueue reconciliation of ``sale_ids`` once the current transaction commits.

    Never raises (a broker outage is logged; the sweep catches up). Without a
    transaction the message is published at once. Locks: none. Idempotent in effect:
    reconciling twice changes nothing.
    """
    ids = [str(sale_id) for sale_id in sale_ids]
    if not ids:
        return
    try:
        transaction.on_commit(lambda: _publish(ids), robust=True)
    except Exception:
        logger.warning("could not register reconciliation of %d sales on commit", len(ids), exc_info=True)


@shared_task(
    name="sales.tasks.unreconciled_sales_sweep",
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=3,
)
def unreconciled_sales_sweep() -> int:
    """Re-enqueue sales still unreconciled ``PAYGO_SWEEP_MIN_AGE`` (a minute) after they arrived (lost messages,
    broker outages, killed workers), in chunks of ids.

    Read-only itself; locks nothing. Idempotent: enqueueing a reconciled sale is a no-op
    for the reconcile task. Returns how many sales it enqueued.
    """
    # Younger sales normally still have their own message on the way (PAYGO_SWEEP_MIN_AGE_SECONDS).
    ids = unreconciled_sale_ids(older_than=timezone.now() - settings.PAYGO_SWEEP_MIN_AGE, limit=SWEEP_MAX_SALES)
    if ids:
        logger.info("sweep: %d unreconciled sales enqueued again", len(ids))
        _publish([str(sale_id) for sale_id in ids])
    return len(ids)
