"""Staff acting on quarantined sales: reprocess through the ingest path, or discard.

Nothing a terminal reported is dropped (DESIGN principle 4): a discarded row stays with
who discarded it and why; a reprocessed one points at the sale it became.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from paygo.errors import ApplicationError
from sales.ingest import quarantine_payload_decode, sale_batch_ingest
from sales.models import QuarantinedSale, QuarantineStatus, Sale

ACCEPTED_STATUSES = frozenset({"accepted", "duplicate"})


class QuarantineError(ApplicationError):
    code = "invalid_quarantine_operation"


def _error_codes(errors: list[dict[str, str]]) -> str:
    return ",".join(dict.fromkeys(e["code"] for e in errors if e.get("code")))[:255]


def _locked_pending(quarantined: QuarantinedSale) -> QuarantinedSale:
    locked = QuarantinedSale.objects.select_for_update().get(pk=quarantined.pk)
    if locked.status != QuarantineStatus.PENDING:
        raise QuarantineError("Esta venta en cuarentena ya fue procesada.")
    return locked


@transaction.atomic
def quarantined_sale_reprocess(*, quarantined: QuarantinedSale, user) -> QuarantinedSale:
    """Send the quarantined sale through the ingest again, as its terminal.

    The exact object the terminal sent is resubmitted (a payload stored sanitized is
    decoded first) in a batch of its own (:func:`sales.ingest.sale_batch_ingest`).
    Accepted (or a duplicate: the sale is already stored, e.g. the terminal's own retry
    got in after the fix) → the row becomes ``reprocessed`` with ``resulting_sale``,
    ``processed_by`` and ``processed_at``; the ingest enqueues its reconciliation on
    commit. Rejected again → it stays ``pending`` with the new errors, and the attempt
    is noted.

    A re-rejected sale is quarantined by the ingest as well: with the same payload and
    errors it finds this pending row and adds none; with other errors it adds a row,
    which is folded into this one (marked ``discarded`` as a copy, so one pending row per
    sale remains and nothing is deleted).

    Locks: the quarantine row (``FOR UPDATE``) so two people reprocessing at once ingest it
    once; the ingest itself is idempotent by sale id.
    """
    locked = _locked_pending(quarantined)
    before = QuarantinedSale.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    result = sale_batch_ingest(
        terminal=locked.terminal,
        # A batch of its own: this is a new upload attempt, not a replay of the original one.
        batch_id=str(uuid.uuid4()),
        sales=[quarantine_payload_decode(locked.raw_payload)],
        received_at=timezone.now(),
    )
    (outcome,) = result.results
    now = timezone.now()
    attempt = f"{timezone.localtime(now):%Y-%m-%d %H:%M} reprocesada por {user.get_username()}"

    QuarantinedSale.objects.filter(
        pk__gt=before, terminal=locked.terminal, sale_id=locked.sale_id, status=QuarantineStatus.PENDING
    ).update(
        status=QuarantineStatus.DISCARDED,
        processed_at=now,
        processed_by=user,
        note=f"Copia del reproceso de la cuarentena #{locked.pk}",
    )

    if outcome["status"] in ACCEPTED_STATUSES:
        locked.status = QuarantineStatus.REPROCESSED
        locked.resulting_sale = Sale.objects.filter(pk=outcome["id"]).first() if outcome["id"] else None
        locked.processed_by = user
        locked.processed_at = now
        label = "aceptada" if outcome["status"] == "accepted" else "ya estaba registrada"
        locked.note = "\n".join(filter(None, [locked.note, f"{attempt}: {label}"]))
    else:
        errors = outcome.get("errors") or []
        if errors:
            locked.errors = errors
            locked.error_codes = _error_codes(errors)
        locked.note = "\n".join(filter(None, [locked.note, f"{attempt}: rechazada de nuevo"]))
    locked.save()
    return locked


@transaction.atomic
def quarantined_sale_discard(*, quarantined: QuarantinedSale, user, note: str) -> QuarantinedSale:
    """Mark a pending quarantined sale as discarded, with who, when and a required reason.

    The row and its payload stay. Locks: the quarantine row (``FOR UPDATE``).
    """
    note = (note or "").strip()
    if not note:
        raise QuarantineError("Indique por qué se descarta la venta.")
    locked = _locked_pending(quarantined)
    locked.status = QuarantineStatus.DISCARDED
    locked.processed_by = user
    locked.processed_at = timezone.now()
    locked.note = "\n".join(filter(None, [locked.note, note]))
    locked.save()
    return locked
