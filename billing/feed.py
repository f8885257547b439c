"""The balance change feed: a per-institution sequence assigned in commit order.

Every write that changes what a terminal should know about a customer (balance, limits,
blocks, units, status) calls :func:`customers_touch` inside its transaction. The
institution's :class:`~billing.models.BalanceFeed` row is locked until commit, so two
writers of one institution are serialized on it and a reader never sees sequence N+1
committed before N.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from billing.models import BalanceFeed, Customer


def balance_feed_next_seq(*, institution_id: int) -> int:
    """Lock the institution's feed row until commit and return its next sequence number.

    Must run inside a transaction. Locks: the ``BalanceFeed`` row (``FOR UPDATE``).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("balance_feed_next_seq must run inside a transaction")
    BalanceFeed.objects.get_or_create(institution_id=institution_id)
    updated = BalanceFeed.objects.filter(institution_id=institution_id).update(last_seq=F("last_seq") + 1)
    assert updated == 1
    # The UPDATE above holds the row lock until commit on PostgreSQL; SQLite has one writer.
    return BalanceFeed.objects.values_list("last_seq", flat=True).get(institution_id=institution_id)


def customers_touch(*, institution_id: int, customer_ids: Iterable[int]) -> int | None:
    """Mark customers as changed in the feed (one UPDATE). Returns the sequence used."""
    ids = sorted(set(customer_ids))
    if not ids:
        return None
    seq = balance_feed_next_seq(institution_id=institution_id)
    Customer.objects.filter(institution_id=institution_id, pk__in=ids).update(change_seq=seq)
    return seq
