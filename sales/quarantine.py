"""Staff acting on quarantined sales: reprocess through the ingest path, or discard.

Nothing a terminal reported is dropped (DESIGN principle 4): a discarded row stays with
who discarded it and why; a reprocessed one points at the sale it became.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from paygo.errors import ApplicationError
from sales.models import QuarantinedSale, QuarantineStatus, Sale

ACCEPTED_STATUSES = frozenset({"accepted", "duplicate"})


class QuarantineError(ApplicationError):
    code = "invalid_quarantine_operation"


def _read(result: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from the ingest's result whether it is an object or a dict."""
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def _error_codes(errors: list[Any]) -> str:
    codes = [str(_read(error, "code", "")) for error in errors]
    return ",".join(sorted({code for code in codes if code}))[:255]


def _locked_pending(quarantined: QuarantinedSale) -> QuarantinedSale:
    locked = QuarantinedSale.objects.select_for_update().get(pk=quarantined.pk)
    if locked.status != QuarantineStatus.PENDING:
        raise QuarantineError("Esta venta en cuarentena ya fue procesada.")
    return locked


@transaction.atomic
def quarantined_sale_reprocess(*, quarantined: QuarantinedSale, user) -> QuarantinedSale:
    """Send the quarantined payload through the ingest again, as its terminal.

    Accepted (or a duplicate: the sale is already stored, e.g. a later retry of the same
    sale got in) → the row becomes ``reprocessed`` with ``resulting_sale``,
    ``processed_by`` and ``processed_at``. Rejected again → it stays ``pending`` with the
    new errors, and the attempt is noted.

    Locks: the quarantine row (``FOR UPDATE``) so two people reprocessing at once ingest it
    once; the ingest itself is idempotent by sale id. Side effects: whatever the ingest
    does for an accepted sale (stored, reconciliation enqueued on commit).
    """
    # Imported here: the ingest lives in its own module, loaded only when staff reprocess.
    from sales.ingest import sale_batch_ingest

    locked = _locked_pending(quarantined)
    before = QuarantinedSale.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    result = sale_batch_ingest(
        terminal=locked.terminal,
        # A batch of its own: this is a new upload attempt, not a replay of the original one.
        batch_id=str(uuid.uuid4()),
        sales=[locked.raw_payload],
        received_at=timezone.now(),
    )
    results = _read(result, "results", []) or []
    outcome = results[0] if results else {}
    status = _read(outcome, "status")
    now = timezone.now()
    attempt = f"{now:%Y-%m-%d %H:%M} reprocesada por {user.get_username()}"

    # The ingest quarantines what it rejects; this payload already has its row (this one),
    # so a row it created just now for the same sale is folded into this one.
    QuarantinedSale.objects.filter(
        pk__gt=before, terminal=locked.terminal, sale_id=locked.sale_id, status=QuarantineStatus.PENDING
    ).update(
        status=QuarantineStatus.DISCARDED,
        processed_at=now,
        processed_by=user,
        note=f"Copia del reproceso de la cuarentena #{locked.pk}",
    )

    if status in ACCEPTED_STATUSES:
        sale_id = _read(outcome, "id") or locked.sale_id
        locked.status = QuarantineStatus.REPROCESSED
        locked.resulting_sale = Sale.objects.filter(pk=sale_id).first() if sale_id else None
        locked.processed_by = user
        locked.processed_at = now
        locked.note = "\n".join(filter(None, [locked.note, f"{attempt}: {status}"]))
    else:
        errors = _read(outcome, "errors", []) or []
        if errors:
            locked.errors = [
                {key: _read(error, key) for key in ("code", "field", "message") if _read(error, key) is not None}
                for error in errors
            ]
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
