"""The balance change feed: a per-institution sequence assigned in commit order.

Every write that changes what a terminal should know about a customer (balance, limits,
blocks, units, status) calls :func:`customers_touch` (or, for customers of any
institution, :func:`customers_feed_bump` / :func:`customers_feed_seqs`) inside its
transaction. The
institution's :class:`~billing.models.BalanceFeed` row is locked until commit, so two
writers of one institution are serialized on it and a reader never sees sequence N+1
committed before N.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db import connection, transaction

from billing.models import BalanceFeed, Customer


def balance_feed_next_seq(*, institution_id: int) -> int:
    """Lock the institution's feed row until commit and return its next sequence number.

    Must run inside a transaction. Locks: the ``BalanceFeed`` row (``FOR UPDATE``).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("balance_feed_next_seq must run inside a transaction")
    opts = BalanceFeed._meta
    quote = connection.ops.quote_name
    last_seq = quote(opts.get_field("last_seq").column)
    # One statement in the usual case (the row exists). The UPDATE holds the row lock until
    # commit on PostgreSQL; SQLite has one writer. Both return the new value (RETURNING).
    sql = (
        f"UPDATE {quote(opts.db_table)} SET {last_seq} = {last_seq} + 1"
        f" WHERE {quote(opts.get_field('institution').column)} = %s RETURNING {last_seq}"
    )
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(sql, [institution_id])
            row = cursor.fetchone()
        if row is not None:
            return row[0]
        BalanceFeed.objects.get_or_create(institution_id=institution_id)
    raise RuntimeError(f"no balance feed row for institution {institution_id}")


def customers_touch(*, institution_id: int, customer_ids: Iterable[int]) -> int | None:
    """Mark customers as changed in the feed (one UPDATE). Returns the sequence used."""
    ids = sorted(set(customer_ids))
    if not ids:
        return None
    seq = balance_feed_next_seq(institution_id=institution_id)
    Customer.objects.filter(institution_id=institution_id, pk__in=ids).update(change_seq=seq)
    return seq


def customers_feed_seqs(
    *, customer_ids: Iterable[int], institution_of: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Lock the customers (``FOR NO KEY UPDATE``, pk order), then their institutions' feed
    rows, and return the sequence each customer's change takes: the next one of its
    institution's feed. The caller writes it to ``change_seq`` in the same transaction,
    in its own UPDATE of the rows when it writes them anyway (a balance and its sequence:
    one new row version). Customers before feeds is the order an admin edit takes them
    (the customer saved, then touched), so the two cannot deadlock.

    ``institution_of`` (``{customer: institution}``): given by a caller that already holds
    the customers' locks (reconciliation), so they are not read and locked again.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    if institution_of is not None:
        institution_of = {pk: institution_of[pk] for pk in ids}
    else:
        institution_of = dict(
            Customer.objects.select_for_update(no_key=True)
            .filter(pk__any=ids)
            .order_by("pk")
            .values_list("pk", "institution_id")
        )
    seqs = {
        institution_id: balance_feed_next_seq(institution_id=institution_id)
        for institution_id in sorted(set(institution_of.values()))
    }
    return {pk: seqs[institution_id] for pk, institution_id in institution_of.items()}


def customers_feed_bump(*, customer_ids: Iterable[int], institution_of: Mapping[int, int] | None = None) -> None:
    """Mark customers of any institutions as changed in the feed
    (:func:`customers_feed_seqs`, then one UPDATE per institution)."""
    by_seq: dict[int, list[int]] = defaultdict(list)
    for pk, seq in customers_feed_seqs(customer_ids=customer_ids, institution_of=institution_of).items():
        by_seq[seq].append(pk)
    for seq, pks in sorted(by_seq.items()):
        Customer.objects.filter(pk__any=pks).update(change_seq=seq)
