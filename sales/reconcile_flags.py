"""The flags reconciliation owns: evaluated in time order through :mod:`sales.rules` and
written set-based.

Only ``negative_stock``, ``overdraft_exceeded`` and ``daily_max_exceeded`` are recomputed
here; ingest-time flags (blocks, units, kiosk, price, clock skew…) are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sales.models import FlagCode, SaleFlag
from sales.rules import (
    TIME_ORDERED_RULES,
    CustomerFacts,
    LineFacts,
    PaymentFacts,
    SaleFacts,
    offline_flags,
    sale_breaches,
)

RECONCILE_FLAG_CODES = frozenset({FlagCode.NEGATIVE_STOCK, FlagCode.OVERDRAFT_EXCEEDED, FlagCode.DAILY_MAX_EXCEEDED})


@dataclass
class FlagEvaluation:
    """The outcome of one time-ordered recomputation of one flag code.

    ``evaluated``: every sale whose flag was decided (flag set or cleared);
    ``flagged``: the sales that carry it, with the rule's detail (``None`` = keep the
    detail already stored, the sale is flagged for a reason outside this recomputation).
    """

    code: str
    evaluated: set[UUID] = field(default_factory=set)
    flagged: dict[UUID, dict[str, Any] | None] = field(default_factory=dict)


def time_ordered_flags(
    *,
    lines: Iterable[LineFacts] = (),
    payments: Iterable[PaymentFacts] = (),
    customer: CustomerFacts | None = None,
) -> dict[str, dict]:
    """Evaluate the business rules on the time-ordered facts of one sale.

    Only the facts known in time order (stock before, balance before, spent today
    before) are given; the sale's context (offline, terminal kind, node flags) is left
    neutral because the rules that read it run at ingest; only the rules that read what
    came before the sale are asked (``TIME_ORDERED_RULES``). Returns only the flags this
    module owns. Pure; no database.
    """
    facts = SaleFacts(
        offline=False,
        terminal_kind="pos",
        allow_offline_closed_inventory_sales=True,
        use_last_balance_offline=True,
        lines=tuple(lines),
        payments=tuple(payments),
        customer=customer,
    )
    return {
        code: detail
        for code, detail in offline_flags(sale_breaches(facts, rules=TIME_ORDERED_RULES)).items()
        if code in RECONCILE_FLAG_CODES
    }


def sale_flags_apply(*, evaluations: Iterable[FlagEvaluation]) -> None:
    """Write the recomputed flags: set the flagged sales, clear the evaluated others.

    Only what changed is written: one read of the stored flags of the evaluated sales (all
    codes at once), then per code one DELETE of those no longer flagged, and one INSERT …
    ON CONFLICT DO UPDATE of every flag new or with a new detail — each only when there is
    something to do. A recomputation walks whole episodes, so most of what it evaluates is
    already stored as it should be; rewriting it all made every chunk cost as much as the
    episode it continues. Idempotent (unique ``(sale, code)``). Locks: none of its own;
    callers hold the node and customer locks of the sales evaluated.
    """
    evaluations = list(evaluations)
    codes = [evaluation.code for evaluation in evaluations]
    for code in codes:
        if code not in RECONCILE_FLAG_CODES:
            raise ValueError(f"{code} is not a reconciliation flag")
    if len(set(codes)) != len(codes):
        raise ValueError(f"a flag code is evaluated twice: {codes}")
    evaluations = [evaluation for evaluation in evaluations if evaluation.evaluated]
    if not evaluations:
        return
    evaluated = {evaluation.code: evaluation.evaluated for evaluation in evaluations}
    stored: dict[str, dict[UUID, Any]] = {code: {} for code in evaluated}
    for sale_id, code, detail in (
        SaleFlag.objects.filter(code__in=list(evaluated), sale_id__any=list(set().union(*evaluated.values())))
        .order_by()
        .values_list("sale_id", "code", "detail")
    ):
        if sale_id in evaluated[code]:
            stored[code][sale_id] = detail
    rows = []
    for evaluation in evaluations:
        code_stored = stored[evaluation.code]
        cleared = [sale_id for sale_id in code_stored if sale_id not in evaluation.flagged]
        if cleared:
            # One plain DELETE: flags have no dependants and no delete signals, and
            # QuerySet.delete() would first SELECT every row to collect them.
            queryset = SaleFlag.objects.filter(code=evaluation.code, sale_id__any=cleared)
            queryset._raw_delete(queryset.db)
        rows.extend(
            SaleFlag(sale_id=sale_id, code=evaluation.code, detail=detail)
            for sale_id, detail in sorted(evaluation.flagged.items())
            if detail is not None and code_stored.get(sale_id) != detail
        )
    if rows:
        SaleFlag.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["sale", "code"], update_fields=["detail"]
        )


def flag_details_merge(target: dict[UUID, dict | None], source: Mapping[UUID, dict | None]) -> None:
    """Merge flag details, the first non-empty detail of a sale wins."""
    for sale_id, detail in source.items():
        if target.get(sale_id) is None:
            target[sale_id] = detail
