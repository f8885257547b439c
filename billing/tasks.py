"""Celery tasks of the billing app: numbering the offline sales a range left waiting."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

logger = logging.getLogger(__name__)


@shared_task(
    name="billing.tasks.invoices_pending_assign",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def invoices_pending_assign() -> int:
    """Number reconciled offline sales still without an invoice (beat schedule
    ``number-pending-invoices``, and after a resolution is saved).

    Calls :func:`billing.invoicing.invoices_pending_assign`: locks the owners' active
    resolutions one owner at a time; idempotent. Returns how many sales it numbered.
    """
    # Imported here: billing.invoicing enqueues this task when a resolution is saved.
    from billing.invoicing import invoices_pending_assign as invoices_pending_assign_service

    return invoices_pending_assign_service()


def invoices_pending_assign_enqueue() -> None:
    """Enqueue :func:`invoices_pending_assign` once the current transaction commits.

    Never raises: with the broker down the periodic run numbers the backlog later.
    """

    def publish() -> None:
        try:
            invoices_pending_assign.apply_async()
        except Exception:
            logger.warning("could not enqueue numbering of pending invoices; the periodic run will", exc_info=True)

    transaction.on_commit(publish, robust=True)
