"""Reads behind the «Sobregiros» report: customers below zero and the offline sales that
took them there, and the exposure per node.

Definitions shown on the page:

- **Bajo cero**: how much the balance is below zero (``-balance`` when negative).
- **Exceso sobre el cupo**: how much the balance is beyond the allowed overdraft
  (``-(balance + overdraft_limit)`` when positive); only offline sales can cause it.
- **Exposición del nodo**: the sum of «bajo cero» of the customers who are below zero now
  and have at least one offline sale at that node flagged ``overdraft_exceeded`` or
  ``balance_unverified`` (in the filtered dates). A customer flagged at two nodes counts
  in both, so the grand total counts each customer once; customers below zero with no
  such sale appear on their own line, so the total equals the money owed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import DecimalField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Cast, Greatest

from billing.models import Customer
from nodes.models import Institution, Node, Terminal
from sales.models import FlagCode, Sale, SaleFlag

OVERDRAFT_FLAGS = (FlagCode.OVERDRAFT_EXCEEDED, FlagCode.BALANCE_UNVERIFIED)
BEYOND_LIMIT, WITHIN_LIMIT = "beyond", "within"
MONEY = DecimalField(max_digits=14, decimal_places=2)


def overdraft_flagged_sales(
    *,
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Sale]:
    """Offline sales flagged ``overdraft_exceeded`` or ``balance_unverified``."""
    flagged = SaleFlag.objects.filter(sale=OuterRef("pk"), code__in=OVERDRAFT_FLAGS)
    sales = Sale.objects.filter(Exists(flagged), offline=True, customer__isnull=False)
    if node:
        sales = sales.filter(node=node)
    if terminal:
        sales = sales.filter(terminal=terminal)
    if date_from:
        sales = sales.filter(business_date__gte=date_from)
    if date_to:
        sales = sales.filter(business_date__lte=date_to)
    return sales


def overdrawn_customers_list(
    *,
    institution: Institution | None = None,
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    q: str = "",
) -> QuerySet[Customer]:
    """Customers below zero, with ``below_zero`` and ``over_limit`` annotated and their
    flagged offline sales prefetched (``flagged_sales``, with node, AP and flags).

    With a node, AP or dates only customers with a flagged sale there and then are listed.
    """
    sale_filters = {"node": node, "terminal": terminal, "date_from": date_from, "date_to": date_to}
    flagged_sales = overdraft_flagged_sales(**sale_filters)
    customers = (
        Customer.objects.filter(balance__lt=0)
        .select_related("institution")
        .annotate(
            below_zero=Cast(-F("balance"), MONEY),
            over_limit=Cast(Greatest(-(F("balance") + F("overdraft_limit")), Value(Decimal("0"))), MONEY),
        )
        .prefetch_related(
            Prefetch(
                "sales",
                queryset=flagged_sales.select_related("node", "terminal")
                .prefetch_related(Prefetch("flags", queryset=SaleFlag.objects.filter(code__in=OVERDRAFT_FLAGS)))
                .order_by("occurred_at"),
                to_attr="flagged_sales",
            )
        )
    )
    if any(sale_filters.values()):
        customers = customers.filter(Exists(flagged_sales.filter(customer=OuterRef("pk"))))
    if institution:
        customers = customers.filter(institution=institution)
    if status == BEYOND_LIMIT:
        customers = customers.filter(balance__lt=-F("overdraft_limit"))
    elif status == WITHIN_LIMIT:
        customers = customers.filter(balance__gte=-F("overdraft_limit"))
    if q:
        customers = customers.filter(Q(code__icontains=q) | Q(name__icontains=q))
    return customers


def overdraft_exposure_by_node(
    *,
    customers: QuerySet[Customer],
    node: Node | None = None,
    terminal: Terminal | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> dict[str, object]:
    """Exposure per node over the report's filtered customers (see the module docstring).

    Two queries: the customers' balances and the (node, customer) pairs of flagged sales.
    Returns ``rows`` (node label, customers, exposure, over limit), ``unflagged`` (the
    same for customers with no flagged sale) and ``total`` (each customer once).
    """
    balances = {
        pk: (below, over) for pk, below, over in customers.order_by().values_list("pk", "below_zero", "over_limit")
    }
    pairs = (
        overdraft_flagged_sales(node=node, terminal=terminal, date_from=date_from, date_to=date_to)
        .filter(customer_id__in=list(balances))
        .order_by()
        .values_list("node__code", "node__name", "customer_id")
        .distinct()
    )
    per_node: dict[tuple[str, str], set[int]] = {}
    for code, name, customer_id in pairs:
        per_node.setdefault((code, name), set()).add(customer_id)
    flagged_customers = set().union(*per_node.values()) if per_node else set()

    def summary(label: str, ids: set[int]) -> dict[str, object]:
        return {
            "label": label,
            "customers": len(ids),
            "exposure": sum((balances[i][0] for i in ids), Decimal("0")),
            "over_limit": sum((balances[i][1] for i in ids), Decimal("0")),
        }

    rows = [summary(f"{code} — {name}", ids) for (code, name), ids in sorted(per_node.items())]
    rows.sort(key=lambda row: row["exposure"], reverse=True)
    return {
        "rows": rows,
        "unflagged": summary("Sin ventas sin conexión marcadas", set(balances) - flagged_customers),
        "total": summary("Total (cada cliente una vez)", set(balances)),
    }
