"""Celery tasks of the inventory app."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from inventory.verification import ledgers_verify as ledgers_verify_service

logger = logging.getLogger(__name__)


@shared_task(
    name="inventory.tasks.ledgers_verify",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def ledgers_verify() -> int:
    """Periodic ledger verification (beat schedule ``verify-ledgers``).

    Calls :func:`inventory.verification.ledgers_verify`: read-only on the ledgers, no
    locks, stores one :class:`~inventory.models.LedgerVerification`; logs an error when
    anything drifted. Safe to run twice. Returns the number of drifts.
    """
    verification = ledgers_verify_service()
    if verification.drift_count:
        logger.error("ledger verification found %d drifts: %s", verification.drift_count, verification.drifts[:20])
    return verification.drift_count
