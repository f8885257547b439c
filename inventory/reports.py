"""«Inventario negativo»: the report page and finance's resolve form (thin adapters over
``inventory.report_selectors`` and ``inventory.negative_stock``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from inventory.models import NegativeStockEvent, NegativeStockStatus
from inventory.negative_stock import negative_stock_event_resolve
from inventory.report_selectors import negative_stock_events_list, negative_stock_value_by_node_daily
from paygo.errors import ApplicationError
from paygo.reporting import (
    DATETIME,
    MONEY,
    QUANTITY,
    REPORTS_PERMISSION,
    Column,
    Report,
    ReportFilterForm,
    business_today,
    datetime_text,
    money_text,
    safe_next_url,
)
from paygo.svg_charts import line_chart_svg

RESOLVE_PERMISSION = "inventory.resolve_negativestockevent"


class NegativeStockFilterForm(ReportFilterForm):
    status = forms.ChoiceField(label="Estado", required=False, choices=[("", "Todos"), *NegativeStockStatus.choices])


def _sales_html(event: NegativeStockEvent) -> str:
    items = format_html_join(
        "",
        '<li><a href="{}">{} #{}</a> · {} · {}</li>',
        (
            (
                reverse("admin:sales_sale_change", args=[sale.pk]),
                sale.terminal.code,
                sale.seq,
                datetime_text(sale.occurred_at),
                "sin conexión" if sale.offline else "en línea",
            )
            for sale in event.sales.all()
        ),
    )
    return format_html('<ul class="report-sales">{}</ul>', items) if items else "—"


def _status_html(event: NegativeStockEvent) -> str:
    if event.status == NegativeStockStatus.RESOLVED:
        who = event.resolved_by.get_username() if event.resolved_by else "—"
        return format_html(
            '<span class="report-status resolved">Resuelto</span><br><small>{} · {}</small><br><small>{}</small>',
            who,
            datetime_text(event.resolved_at),
            event.resolution_note,
        )
    return mark_safe('<span class="report-status open">Abierto</span>')


class NegativeStockReport(Report):
    slug = "inventario-negativo"
    title = "Inventario negativo"
    description = (
        "Cada periodo en que las existencias de un producto en un nodo quedaron bajo cero por ventas "
        "(en orden de hora de venta), con las ventas que lo causaron. «Valor a precio» = |mínimo "
        "alcanzado| × precio actual del producto. Finanzas lo resuelve con un conteo físico o un ajuste: "
        "queda un movimiento en el libro de inventario, nunca una edición."
    )
    form_class = NegativeStockFilterForm
    search_help = "Producto (SKU o nombre) o nodo"
    default_order = "-started_at"
    template_name = "admin/reports/inventario_negativo.html"

    def columns(self) -> list[Column]:
        return [
            Column("node__code", "Nodo", order="node__code"),
            Column("product__sku", "SKU", order="product__sku"),
            Column("product__name", "Producto", order="product__name"),
            Column("current_quantity", "Existencias actuales", QUANTITY, order="current_quantity"),
            Column("started_at", "Negativo desde", DATETIME, order="started_at"),
            Column("quantity_before", "Antes", QUANTITY, order="quantity_before"),
            Column("quantity_after", "Después", QUANTITY, order="quantity_after"),
            Column("lowest_quantity", "Mínimo alcanzado", QUANTITY, order="lowest_quantity", total="lowest_quantity"),
            Column("product__price", "Precio", MONEY, order="product__price"),
            Column("value_at_price", "Valor a precio", MONEY, order="value_at_price", total="value_at_price"),
            Column(
                "sales",
                "Ventas que lo causaron",
                value=lambda e: "; ".join(
                    f"{s.terminal.code}#{s.seq} {datetime_text(s.occurred_at)} "
                    f"{'sin conexión' if s.offline else 'en línea'} ({s.pk})"
                    for s in e.sales.all()
                ),
                html=_sales_html,
            ),
            Column("status", "Estado", value=lambda e: e.get_status_display(), html=_status_html, order="status"),
            # Shown inside «Estado» on screen; separate columns in the exports.
            Column("resolved_by__username", "Resuelto por", screen=False),
            Column("resolved_at", "Resuelto", DATETIME, order="resolved_at", screen=False),
            Column("resolution_note", "Nota de resolución", screen=False),
        ]

    def rows(self, filters):
        return negative_stock_events_list(
            **{k: filters.get(k) for k in ("institution", "node", "terminal", "date_from", "date_to", "status")},
            q=filters.get("q", ""),
        )

    def extra_context(self, request, rows, filters):
        last_day = filters.get("date_to") or business_today()
        first_day = filters.get("date_from") or last_day - timedelta(days=29)
        series = negative_stock_value_by_node_daily(events=rows, first_day=first_day, last_day=last_day)
        return {
            "chart": line_chart_svg(
                series, title="Valor del inventario negativo por nodo (fin de cada día)", value_text=money_text
            ),
            "chart_caption": (
                f"Del {first_day:%d/%m/%Y} al {last_day:%d/%m/%Y}: valor a precio de los eventos que seguían "
                "en negativo (ni cerrados por existencias ni resueltos) al final de cada día, hora de Bogotá."
            ),
        }

    def row_class(self, row) -> str:
        return "row-open" if row.status == NegativeStockStatus.OPEN else "row-resolved"

    has_actions = True

    def row_actions(self, request, row) -> str:
        if row.status != NegativeStockStatus.OPEN or not request.user.has_perm(RESOLVE_PERMISSION):
            return ""
        url = reverse("admin:report_inventario-negativo_resolve", args=[row.pk])
        return format_html(
            '<a class="button" href="{}?{}">Resolver</a>', url, urlencode({"next": request.get_full_path()})
        )


class NegativeStockResolveForm(forms.Form):
    COUNT, ADJUSTMENT = "count", "adjustment"
    method = forms.ChoiceField(
        label="Cómo se resuelve",
        choices=[(COUNT, "Conteo físico (existencias contadas)"), (ADJUSTMENT, "Ajuste (cantidad a sumar o restar)")],
        widget=forms.RadioSelect,
        initial=COUNT,
    )
    quantity = forms.DecimalField(label="Cantidad", max_digits=14, decimal_places=3)
    note = forms.CharField(label="Nota", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def clean(self):
        data = super().clean()
        quantity = data.get("quantity")
        if quantity is None:
            return data
        if data.get("method") == self.COUNT and quantity < 0:
            self.add_error("quantity", "Un conteo físico no puede ser negativo.")
        if data.get("method") == self.ADJUSTMENT and quantity == 0:
            self.add_error("quantity", "El ajuste no puede ser cero.")
        return data


def negative_stock_resolve_view(request, pk: int, *, site):
    """GET: the event and the form; POST: resolve through the service, back to the report."""
    if not (request.user.has_perm(REPORTS_PERMISSION) and request.user.has_perm(RESOLVE_PERMISSION)):
        raise PermissionDenied
    event = get_object_or_404(negative_stock_events_list(), pk=pk)
    report_url = reverse("admin:report_inventario-negativo")
    back = safe_next_url(request, report_url)
    if event.status != NegativeStockStatus.OPEN:
        messages.info(request, "Este evento ya estaba resuelto.")
        return redirect(back)
    form = NegativeStockResolveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        quantity = Decimal(data["quantity"])
        try:
            negative_stock_event_resolve(
                event=event,
                user=request.user,
                counted=quantity if data["method"] == form.COUNT else None,
                adjustment=quantity if data["method"] == form.ADJUSTMENT else None,
                note=data["note"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Inventario negativo de {event.product.sku} en {event.node.code} resuelto.")
            return redirect(back)
    context = {
        **site.each_context(request),
        "title": f"Resolver inventario negativo: {event.product.sku} en {event.node.code}",
        "event": event,
        "form": form,
        "next": back,
        "report_url": report_url,
    }
    return TemplateResponse(request, "admin/reports/resolver_inventario_negativo.html", context)
