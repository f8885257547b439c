"""«Excepciones offline», «Estado de sincronización» and «Cuarentena»: report pages and
the quarantine actions (thin adapters over ``sales.report_selectors`` and
``sales.quarantine``)."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from nodes.models import TerminalKind
from paygo.errors import ApplicationError
from paygo.reporting import (
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    MONEY,
    REPORTS_PERMISSION,
    Column,
    Report,
    ReportFilterForm,
    duration_text,
    safe_next_url,
)
from paygo.svg_charts import bar_chart_svg
from sales.models import FlagCode, QuarantinedSale, QuarantineStatus
from sales.quarantine import quarantined_sale_discard, quarantined_sale_reprocess
from sales.report_selectors import (
    INACTIVE,
    ONLINE,
    SILENT,
    quarantine_error_codes,
    quarantined_sales_list,
    sale_flag_counts,
    sale_flags_list,
    terminal_sync_status_list,
)

REPROCESS_PERMISSION = "sales.reprocess_quarantinedsale"
COMMON_FILTERS = ("institution", "node", "terminal", "date_from", "date_to")


def _sale_link(sale) -> str:
    return reverse("admin:sales_sale_change", args=[sale.pk])


# --- Excepciones offline ----------------------------------------------------------------------


def _flag_detail_text(detail: dict | None) -> str:
    """What people read of a flag's detail: the rule's message (the ingest and
    reconciliation write one, in Spanish); otherwise the detail as compact JSON."""
    if not detail:
        return ""
    message = detail.get("message") if isinstance(detail, dict) else None
    if isinstance(message, str) and message:
        return message
    return json.dumps(detail, ensure_ascii=False)


class OfflineExceptionsFilterForm(ReportFilterForm):
    flag = forms.ChoiceField(label="Alerta", required=False, choices=[("", "Todas"), *FlagCode.choices])
    offline = forms.TypedChoiceField(
        label="Venta",
        required=False,
        choices=[("", "Todas"), ("1", "Sin conexión"), ("0", "En línea")],
        coerce=lambda value: value == "1",
        empty_value=None,
    )


class OfflineExceptionsReport(Report):
    slug = "excepciones-offline"
    title = "Excepciones offline"
    description = (
        "Cada alerta registrada sobre una venta aceptada: reglas que no se aplican sin conexión (bloqueos, "
        "consumo diario, sobregiro, unidades, autoservicio, inventario) y hechos a revisar (precio, reloj, "
        "factura diferida). El día es el de la venta (hora de Bogotá), no el de la sincronización."
    )
    form_class = OfflineExceptionsFilterForm
    search_help = "Cliente (código o nombre), AP o id de la venta"
    default_order = "-sale__occurred_at"
    template_name = "admin/reports/excepciones_offline.html"

    def columns(self) -> list[Column]:
        return [
            Column("sale__business_date", "Día", DATE, order="sale__business_date"),
            Column("sale__occurred_at", "Hora de venta", DATETIME, order="sale__occurred_at"),
            Column("code", "Alerta", value=lambda f: f.get_code_display(), order="code"),
            Column("sale__node__code", "Nodo", order="sale__node__code"),
            Column("sale__terminal__code", "AP", order="sale__terminal__code"),
            Column("sale__customer__code", "Cliente", order="sale__customer__code"),
            Column("sale__customer__name", "Nombre del cliente", order="sale__customer__name"),
            Column("sale__offline", "Sin conexión", BOOLEAN, order="sale__offline"),
            Column("sale__total", "Total de la venta", MONEY, order="sale__total"),
            Column("detail", "Detalle", value=lambda f: _flag_detail_text(f.detail)),
            Column(
                "sale_id",
                "Venta",
                value=lambda f: str(f.sale_id),
                link=lambda f: _sale_link(f.sale),
                html=lambda f: format_html('<a href="{}">Ver venta</a>', _sale_link(f.sale)),
            ),
        ]

    def rows(self, filters):
        return sale_flags_list(
            **{k: filters.get(k) for k in (*COMMON_FILTERS, "flag", "offline")}, q=filters.get("q", "")
        )

    def extra_context(self, request, rows, filters):
        by_code = sale_flag_counts(flags=rows, by="code")
        return {
            "chart": bar_chart_svg(by_code, title="Alertas por tipo"),
            "counts_by_node": sale_flag_counts(flags=rows, by="node"),
            "counts_by_day": sale_flag_counts(flags=rows, by="day")[-31:],
            "distinct_sales": rows.order_by().values("sale_id").distinct().count(),
        }


# --- Estado de sincronización --------------------------------------------------------------------


class SyncStatusFilterForm(ReportFilterForm):
    status = forms.ChoiceField(
        label="Estado",
        required=False,
        choices=[
            ("", "Todas"),
            (SILENT, "Silenciosas (sin contacto)"),
            (ONLINE, "En contacto"),
            (INACTIVE, "Inactivas"),
        ],
    )
    kind = forms.ChoiceField(label="Tipo", required=False, choices=[("", "Todos"), *TerminalKind.choices])


def _gaps_text(terminal) -> str:
    return ", ".join(
        str(g.first_missing) if g.first_missing == g.last_missing else f"{g.first_missing}–{g.last_missing}"
        for g in terminal.seq_gaps.all()
    )


def _sync_state(terminal) -> str:
    if not terminal.active:
        return "Inactiva"
    if terminal.silent:
        return "Silenciosa" if terminal.last_seen_at else "Nunca se ha conectado"
    return "En contacto"


def _seconds_since(value):
    return (timezone.now() - value).total_seconds() if value else None


class SyncStatusReport(Report):
    slug = "estado-sincronizacion"
    title = "Estado de sincronización"
    description = (
        "Por AP: cuándo se conectó y envió ventas por última vez, cuántas ventas dice tener pendientes, la "
        "antigüedad de su copia de saldos, los consecutivos (seq) que faltan y sus ventas en cuarentena. "
        "Las APs activas sin contacto en más de {silent} aparecen resaltadas como silenciosas."
    )
    form_class = SyncStatusFilterForm
    hidden_filters = ("date_from", "date_to")
    search_help = "Código o nombre de la AP, o nodo"
    default_order = "node__code"
    template_name = "admin/reports/estado_sincronizacion.html"

    def columns(self) -> list[Column]:
        return [
            Column("code", "AP", order="code"),
            Column("name", "Nombre", order="name"),
            Column("node__code", "Nodo", order="node__code"),
            Column("kind", "Tipo", value=lambda t: t.get_kind_display(), order="kind"),
            Column("state", "Estado", value=_sync_state, order="silent"),
            Column("last_seen_at", "Última conexión", DATETIME, order="last_seen_at"),
            Column(
                "last_seen_age",
                "Hace",
                value=lambda t: duration_text(_seconds_since(t.last_seen_at)) if t.last_seen_at else "",
            ),
            Column("last_upload_at", "Último envío de ventas", DATETIME, order="last_upload_at"),
            Column(
                "reported_pending_sales",
                "Ventas pendientes (reportadas)",
                INTEGER,
                order="reported_pending_sales",
                total="reported_pending_sales",
            ),
            Column(
                "reported_balances_age_seconds",
                "Antigüedad de saldos (s)",
                INTEGER,
                order="reported_balances_age_seconds",
                screen=False,
            ),
            Column(
                "balances_age",
                "Antigüedad de saldos",
                value=lambda t: duration_text(t.reported_balances_age_seconds),
                order="reported_balances_age_seconds",
            ),
            Column("reported_last_seq", "Último seq reportado", INTEGER, order="reported_last_seq"),
            Column("gaps", "Seq faltantes (rangos)", value=_gaps_text),
            Column("missing_seq", "Seq faltantes", INTEGER, order="missing_seq", total="missing_seq"),
            Column(
                "quarantine_pending",
                "En cuarentena (pendientes)",
                INTEGER,
                order="quarantine_pending",
                total="quarantine_pending",
                link=lambda t: (
                    reverse("admin:report_cuarentena") + "?" + urlencode({"terminal": t.pk, "status": "pending"})
                    if t.quarantine_pending
                    else None
                ),
            ),
        ]

    @property
    def description_text(self) -> str:
        return self.description.format(silent=duration_text(settings.PAYGO_TERMINAL_SILENT_AFTER.total_seconds()))

    def rows(self, filters):
        return terminal_sync_status_list(
            **{k: filters.get(k) for k in ("institution", "node", "terminal", "status", "kind")},
            q=filters.get("q", ""),
        )

    def extra_context(self, request, rows, filters):
        return {"silent_count": rows.filter(silent=True).count()}

    def row_class(self, row) -> str:
        return "row-silent" if row.silent else ""


# --- Cuarentena -------------------------------------------------------------------------------------


class QuarantineFilterForm(ReportFilterForm):
    status = forms.ChoiceField(label="Estado", required=False, choices=[("", "Todos"), *QuarantineStatus.choices])
    error_code = forms.ChoiceField(label="Código de error", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["error_code"].choices = [("", "Todos"), *((c, c) for c in quarantine_error_codes())]


def _errors_text(row: QuarantinedSale) -> str:
    errors = row.errors if isinstance(row.errors, list) else [row.errors]
    parts = []
    for error in errors:
        if isinstance(error, dict):
            field = f" [{error['field']}]" if error.get("field") else ""
            parts.append(f"{error.get('code', '')}{field}: {error.get('message', '')}")
        else:
            parts.append(str(error))
    return "; ".join(parts)


def _errors_html(row: QuarantinedSale) -> str:
    errors = row.errors if isinstance(row.errors, list) else [row.errors]
    items = format_html_join(
        "",
        "<li><code>{}</code>{} {}</li>",
        (
            (
                e.get("code", ""),
                format_html(" <small>{}</small>", e["field"]) if e.get("field") else "",
                e.get("message", ""),
            )
            if isinstance(e, dict)
            else (str(e), "", "")
            for e in errors
        ),
    )
    return format_html('<ul class="report-errors">{}</ul>', items)


def _payload_json(row: QuarantinedSale) -> str:
    return json.dumps(row.raw_payload, ensure_ascii=False, indent=2, sort_keys=True)


def _payload_html(row: QuarantinedSale) -> str:
    # format_html escapes the JSON: a payload is what a terminal sent, never trusted markup.
    return format_html(
        '<details class="report-payload"><summary>Ver contenido</summary><pre>{}</pre></details>', _payload_json(row)
    )


def _processed_html(row: QuarantinedSale) -> str:
    if row.status == QuarantineStatus.PENDING:
        return format_html('<span class="report-status open">{}</span>', row.get_status_display())
    who = row.processed_by.get_username() if row.processed_by else "—"
    link = (
        format_html('<br><a href="{}">Venta resultante</a>', _sale_link(row.resulting_sale))
        if row.resulting_sale_id
        else ""
    )
    return format_html(
        '<span class="report-status resolved">{}</span><br><small>{} · {}</small>{}',
        row.get_status_display(),
        who,
        timezone.localtime(row.processed_at).strftime("%d/%m/%Y %H:%M") if row.processed_at else "—",
        link,
    )


class QuarantineReport(Report):
    slug = "cuarentena"
    title = "Cuarentena"
    description = (
        "Ventas que no se pudieron aceptar (producto o cliente desconocido, totales que no cuadran, factura "
        "fuera de rango…), guardadas completas con el contenido recibido y los errores. Corrija la causa "
        "(p. ej. cree el producto) y reprocese: pasa por el mismo camino de ingreso. Nada se borra: "
        "descartar exige una nota."
    )
    form_class = QuarantineFilterForm
    search_help = "Id de la venta, código de error o nota"
    default_order = "-received_at"
    template_name = "admin/reports/cuarentena.html"
    has_actions = True

    def columns(self) -> list[Column]:
        return [
            Column("received_at", "Recibida", DATETIME, order="received_at"),
            Column("terminal__node__code", "Nodo", order="terminal__node__code"),
            Column("terminal__code", "AP", order="terminal__code"),
            Column("sale_id", "Id de la venta", order="sale_id"),
            Column("error_codes", "Códigos de error", order="error_codes"),
            Column("errors", "Errores", value=_errors_text, html=_errors_html),
            Column("raw_payload", "Contenido recibido", value=_payload_json, html=_payload_html),
            Column("status", "Estado", value=lambda r: r.get_status_display(), html=_processed_html, order="status"),
            Column("processed_by__username", "Procesada por", screen=False),
            Column("processed_at", "Procesada", DATETIME, order="processed_at", screen=False),
            Column(
                "resulting_sale_id", "Venta resultante", value=lambda r: str(r.resulting_sale_id or ""), screen=False
            ),
            Column("note", "Nota"),
        ]

    def rows(self, filters):
        return quarantined_sales_list(
            **{k: filters.get(k) for k in (*COMMON_FILTERS, "status", "error_code")}, q=filters.get("q", "")
        )

    def extra_context(self, request, rows, filters):
        by_status = dict(rows.order_by().values_list("status").annotate(n=Count("pk")))
        return {
            "status_counts": [(label, by_status.get(value, 0)) for value, label in QuarantineStatus.choices],
        }

    def row_actions(self, request, row) -> str:
        if row.status != QuarantineStatus.PENDING or not request.user.has_perm(REPROCESS_PERMISSION):
            return ""
        reprocess = reverse("admin:report_cuarentena_reprocess", args=[row.pk])
        discard = reverse("admin:report_cuarentena_discard", args=[row.pk])
        back = request.get_full_path()
        return format_html(
            '<form method="post" action="{}" class="inline-action">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<input type="hidden" name="next" value="{}">'
            '<button type="submit" class="button">Reprocesar</button></form> '
            '<a class="button" href="{}?{}">Descartar</a>',
            reprocess,
            get_token(request),
            back,
            discard,
            urlencode({"next": back}),
        )


def _require_reprocess(request) -> None:
    if not (request.user.has_perm(REPORTS_PERMISSION) and request.user.has_perm(REPROCESS_PERMISSION)):
        raise PermissionDenied


@require_POST
def quarantine_reprocess_view(request, pk: int, *, site):
    """POST only: reprocess one quarantined sale and say what happened."""
    _require_reprocess(request)
    row = get_object_or_404(QuarantinedSale, pk=pk)
    back = safe_next_url(request, reverse("admin:report_cuarentena"))
    try:
        row = quarantined_sale_reprocess(quarantined=row, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    if row.status == QuarantineStatus.REPROCESSED:
        messages.success(request, f"Venta {row.sale_id} reprocesada y aceptada.")
    else:
        messages.warning(request, f"La venta {row.sale_id} fue rechazada de nuevo: {_errors_text(row)}")
    return redirect(back)


class QuarantineDiscardForm(forms.Form):
    note = forms.CharField(
        label="Motivo", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text="Obligatorio."
    )


def quarantine_discard_view(request, pk: int, *, site):
    """GET: the sale and the form asking why; POST: discard it (the row and payload stay)."""
    _require_reprocess(request)
    row = get_object_or_404(QuarantinedSale.objects.select_related("terminal"), pk=pk)
    back = safe_next_url(request, reverse("admin:report_cuarentena"))
    form = QuarantineDiscardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            quarantined_sale_discard(quarantined=row, user=request.user, note=form.cleaned_data["note"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Venta {row.sale_id} descartada.")
            return redirect(back)
    context = {
        **site.each_context(request),
        "title": f"Descartar venta en cuarentena {row.sale_id}",
        "row": row,
        "payload": _payload_json(row),
        "errors_html": _errors_html(row),
        "form": form,
        "next": back,
        "report_url": reverse("admin:report_cuarentena"),
    }
    return TemplateResponse(request, "admin/reports/descartar_cuarentena.html", context)
