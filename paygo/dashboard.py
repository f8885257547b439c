"""The figures at the top of the admin index for people who read the reports.

A handful of aggregate queries (one per card), none growing with the size of history
beyond what their indexes cover, so the index stays fast.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils.http import urlencode

from billing.invoicing import invoices_pending_count
from inventory.report_selectors import negative_stock_open_summary
from paygo.reporting import business_today, money_text
from sales.report_selectors import offline_sales_today, quarantine_pending_count, silent_terminals_count


def dashboard_cards() -> list[dict[str, Any]]:
    """Cards: label, figure, a line of detail, the report link, and whether it needs eyes."""
    today = business_today()
    offline = offline_sales_today()
    negative = negative_stock_open_summary()
    silent = silent_terminals_count()
    quarantine = quarantine_pending_count()
    invoices_pending = invoices_pending_count()
    return [
        {
            "label": "Ventas sin conexión hoy",
            "figure": offline["count"],
            "detail": f"{offline['flagged']} con alertas · {today:%d/%m/%Y} (Bogotá)",
            # Every offline sale of the day, flagged or not: the Sales admin, with the
            # sidebar's own filters (Excepciones offline lists only the flagged ones).
            "url": reverse("admin:sales_sale_changelist")
            + "?"
            + urlencode(
                {
                    "offline__exact": "1",
                    "business_date__gte": today.isoformat(),
                    "business_date__lt": (today + timedelta(days=1)).isoformat(),
                }
            ),
            "alert": offline["flagged"] > 0,
        },
        {
            "label": "Inventario negativo abierto",
            "figure": negative["count"],
            "detail": f"Valor a precio {money_text(negative['value'] or 0)}",
            "url": reverse("admin:report_inventario-negativo") + "?status=open",
            "alert": negative["count"] > 0,
        },
        {
            "label": "APs silenciosas",
            "figure": silent,
            "detail": "Sin contacto reciente o nunca conectadas",
            "url": reverse("admin:report_estado-sincronizacion") + "?status=silent",
            "alert": silent > 0,
        },
        {
            "label": "Ventas en cuarentena",
            "figure": quarantine,
            "detail": "Pendientes de reprocesar o descartar",
            "url": reverse("admin:report_cuarentena") + "?status=pending",
            "alert": quarantine > 0,
        },
        {
            "label": "Facturas pendientes de número",
            "figure": invoices_pending,
            "detail": "Ventas offline sin rango disponible: agregue o amplíe una resolución",
            "url": reverse("admin:sales_sale_changelist") + "?invoice=pending",
            "alert": invoices_pending > 0,
        },
    ]
