"""The reporting framework behind «Reportes» in the admin.

A report is a filter form, a selector returning a queryset (the report's rows, written in
the domain's ``report_selectors`` module), and a list of :class:`Column`. This module does
the rest the same way for every report: reading the filters, search, sorting by column,
pagination, the totals row, and the exports of all filtered rows (CSV in UTF-8 with a BOM
so Excel keeps the accents, XLSX with typed cells: numbers as numbers, dates as dates).

Views here are thin adapters: they check permissions, read the request and call the
report's selector; they hold no business rule.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe

from nodes.models import Institution, Node, Terminal

# The business time zone of the contract: a "day" is a Bogotá day, whatever the server's.
BUSINESS_TZ = ZoneInfo("America/Bogota")
REPORTS_PERMISSION = "sales.view_reports"
EXPORT_FORMATS = ("csv", "xlsx")


# --- Time and number presentation -------------------------------------------------------


def business_today() -> date:
    return timezone.now().astimezone(BUSINESS_TZ).date()


def business_day_start(day: date) -> datetime:
    """The aware instant a Bogotá day starts (UTC in the database, compared as such)."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ)


def business_day_end(day: date) -> datetime:
    """The aware instant the next Bogotá day starts (exclusive end of ``day``)."""
    return business_day_start(day + timedelta(days=1))


def local_datetime(value: datetime | None) -> datetime | None:
    return value.astimezone(BUSINESS_TZ) if value is not None else None


def money_text(value: Decimal | int | None) -> str:
    """Pesos with thousands separators, as es-CO writes them: ``$ 1.234.500``."""
    if value is None:
        return "—"
    value = Decimal(value)
    places = 0 if value == value.to_integral_value() else 2
    text = number_format(abs(value), decimal_pos=places, use_l10n=True, force_grouping=True)
    return f"-$ {text}" if value < 0 else f"$ {text}"


def quantity_text(value: Decimal | int | None) -> str:
    if value is None:
        return "—"
    value = Decimal(value).normalize()
    places = max(0, -value.as_tuple().exponent)
    return number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)


def datetime_text(value: datetime | None) -> str:
    return local_datetime(value).strftime("%d/%m/%Y %H:%M") if value else "—"


def duration_text(seconds: int | float | None) -> str:
    """An age in words people read at a glance: «45 s», «12 min», «3 h 05 min», «2 d 4 h»."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


# --- Columns -----------------------------------------------------------------------------

TEXT, MONEY, QUANTITY, INTEGER, DATETIME, DATE, BOOLEAN = (
    "text",
    "money",
    "quantity",
    "integer",
    "datetime",
    "date",
    "boolean",
)
_XLSX_FORMATS = {
    MONEY: "#,##0.00",
    QUANTITY: "#,##0.###",
    INTEGER: "#,##0",
    DATETIME: "yyyy-mm-dd hh:mm",
    DATE: "yyyy-mm-dd",
}


def _path_value(row: Any, path: str) -> Any:
    value = row
    for part in path.split("__"):
        if value is None:
            return None
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class Column:
    """One column of a report, on screen and in the exports.

    ``value`` reads the raw, typed value of a row (default: the attribute path ``key``,
    ``__`` separated); ``order`` is the ORM ordering used when people sort by it (None: not
    sortable); ``total`` the ORM expression summed over all filtered rows for the totals
    row; ``html`` renders a cell that is more than its value (links, lists); ``link`` wraps
    the value in a link; ``export`` False keeps it off CSV/XLSX (buttons); ``screen`` False
    keeps it off the page (already shown inside another cell) but in the exports.
    """

    key: str
    label: str
    kind: str = TEXT
    value: Callable[[Any], Any] | None = None
    order: str | None = None
    total: Any = None
    link: Callable[[Any], str | None] | None = None
    html: Callable[[Any], str] | None = None
    export: bool = True
    screen: bool = True
    numeric: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", self.kind in (MONEY, QUANTITY, INTEGER))

    def raw(self, row: Any) -> Any:
        return self.value(row) if self.value else _path_value(row, self.key)

    def text(self, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if self.kind == MONEY:
            return money_text(value)
        if self.kind in (QUANTITY, INTEGER):
            return quantity_text(value)
        if self.kind == DATETIME:
            return datetime_text(value)
        if self.kind == DATE:
            return value.strftime("%d/%m/%Y")
        if self.kind == BOOLEAN:
            return "Sí" if value else "No"
        return str(value)

    def cell(self, row: Any) -> SafeString:
        if self.html:
            return mark_safe(self.html(row))
        text = self.text(self.raw(row))
        url = self.link(row) if self.link else None
        return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)

    def export_value(self, row: Any, *, typed: bool) -> Any:
        """The value for an export: typed for XLSX (numbers, naive Bogotá datetimes),
        plain text for CSV (numbers with a dot and no grouping, so they parse back)."""
        value = self.raw(row)
        if value is None:
            return None if typed else ""
        if self.kind == BOOLEAN:
            return "Sí" if value else "No"
        if self.kind == DATETIME:
            local = local_datetime(value).replace(tzinfo=None, microsecond=0)
            return local if typed else local.strftime("%Y-%m-%d %H:%M:%S")
        if self.kind == DATE:
            return value if typed else value.isoformat()
        if self.numeric:
            return value if typed else str(value)
        return str(value)


# --- Filters -----------------------------------------------------------------------------


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class ReportFilterForm(forms.Form):
    """The filters every report shares. A report drops those that do not apply to it
    (``Report.hidden_filters``) and subclasses add their own (status, flag, error code)."""

    institution = forms.ModelChoiceField(
        label="Institución", queryset=Institution.objects.all(), required=False, empty_label="Todas"
    )
    node = forms.ModelChoiceField(
        label="Nodo", queryset=Node.objects.select_related("institution"), required=False, empty_label="Todos"
    )
    terminal = forms.ModelChoiceField(
        label="AP", queryset=Terminal.objects.select_related("node"), required=False, empty_label="Todas"
    )
    date_from = forms.DateField(label="Desde", required=False, widget=DateInput, input_formats=["%Y-%m-%d"])
    date_to = forms.DateField(label="Hasta", required=False, widget=DateInput, input_formats=["%Y-%m-%d"])
    q = forms.CharField(label="Buscar", required=False, max_length=100)

    def __init__(self, *args, hidden: Iterable[str] = (), search_help: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name in hidden:
            self.fields.pop(name, None)
        if search_help and "q" in self.fields:
            self.fields["q"].widget.attrs["placeholder"] = search_help

    def filters(self) -> dict[str, Any]:
        """The valid filters only: an invalid field is shown with its error and ignored."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {name: value for name, value in cleaned.items() if value not in (None, "")}


# --- Reports -------------------------------------------------------------------------------


class Report:
    """A report page: subclasses set the class attributes and implement :meth:`rows`."""

    slug: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    form_class: ClassVar[type[ReportFilterForm]] = ReportFilterForm
    hidden_filters: ClassVar[tuple[str, ...]] = ()
    search_help: ClassVar[str] = ""
    default_order: ClassVar[str] = ""
    per_page: ClassVar[int] = 50
    template_name: ClassVar[str] = "admin/reports/report.html"

    @property
    def description_text(self) -> str:
        return self.description

    def columns(self) -> list[Column]:
        raise NotImplementedError

    def rows(self, filters: dict[str, Any]) -> QuerySet:
        """The filtered rows (all pages), from the domain's report selector."""
        raise NotImplementedError

    def extra_context(self, request: HttpRequest, rows: QuerySet, filters: dict[str, Any]) -> dict[str, Any]:
        """Charts and summaries shown around the table (computed over all filtered rows)."""
        return {}

    def row_class(self, row: Any) -> str:
        return ""

    # Reports whose rows people act on (resolve, reprocess) show a last «Acciones» column,
    # never exported.
    has_actions: ClassVar[bool] = False

    def row_actions(self, request: HttpRequest, row: Any) -> str:
        return ""

    def filter_form(self, data) -> ReportFilterForm:
        return self.form_class(data, hidden=self.hidden_filters, search_help=self.search_help)

    # The machinery shared by every report.

    def ordering(self, requested: str) -> tuple[str, list[str]]:
        """The requested ``o`` parameter if it names a sortable column, else the default."""
        by_key = {c.key: c for c in self.columns() if c.order}
        key = requested.lstrip("-")
        if key in by_key:
            descending = requested.startswith("-")
            order = by_key[key].order
            return requested, [("-" if descending else "") + order, "pk" if not descending else "-pk"]
        return "", [self.default_order, "pk"] if self.default_order else ["pk"]

    def totals(self, rows: QuerySet) -> dict[str, Any]:
        # Aliased apart from the columns: an aggregate named like an annotation it sums
        # would shadow it.
        summed = {f"total_{c.key}": Sum(c.total) for c in self.columns() if c.total is not None}
        if not summed:
            return {}
        return {alias.removeprefix("total_"): value for alias, value in rows.aggregate(**summed).items()}


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def safe_next_url(request: HttpRequest, fallback: str) -> str:
    """Where to go back after an action: ``next`` if it stays on this site, else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def report_view(request: HttpRequest, report: Report, *, site) -> HttpResponse:
    """The page of a report, or its export with ``?format=csv|xlsx``.

    ``site`` is the admin site (its header, sidebar and login wrap the page).
    """
    if not request.user.has_perm(REPORTS_PERMISSION):
        raise PermissionDenied
    form = report.filter_form(request.GET or None)
    filters = form.filters() if request.GET else {}
    order_param, order_by = report.ordering(request.GET.get("o", ""))
    rows = report.rows(filters).order_by(*order_by)

    export = request.GET.get("format")
    if export in EXPORT_FORMATS:
        totals = report.totals(rows)
        writer = csv_response if export == "csv" else xlsx_response
        return writer(report, report.columns(), rows, totals)

    columns = [c for c in report.columns() if c.screen]

    paginator = Paginator(rows, report.per_page)
    page = paginator.get_page(request.GET.get("page"))
    totals = report.totals(rows)
    base_query = _query_without(request, "o", "page", "format")
    headers = []
    for column in columns:
        sort = None
        if column.order:
            ascending = order_param != column.key
            sort = {
                "url": "?" + "&".join(filter(None, [base_query, f"o={'' if ascending else '-'}{column.key}"])),
                "active": order_param.lstrip("-") == column.key,
                "descending": order_param == f"-{column.key}",
            }
        headers.append({"column": column, "sort": sort})
    table = [
        {
            "cells": [(column, column.cell(row)) for column in columns],
            "css": report.row_class(row),
            "actions": mark_safe(report.row_actions(request, row)) if report.has_actions else "",
        }
        for row in page
    ]
    footer = [(column, column.text(totals[column.key]) if column.key in totals else "") for column in columns[1:]]
    export_query = _query_without(request, "page", "format")
    context = {
        **site.each_context(request),
        "title": report.title,
        "report": report,
        "form": form,
        "headers": headers,
        "table": table,
        "footer": footer,
        "row_count": paginator.count,
        "page_obj": page,
        "page_query": _query_without(request, "page", "format"),
        "csv_url": "?" + "&".join(filter(None, [export_query, "format=csv"])),
        "xlsx_url": "?" + "&".join(filter(None, [export_query, "format=xlsx"])),
        **report.extra_context(request, rows, filters),
    }
    return TemplateResponse(request, report.template_name, context)


# --- Exports -------------------------------------------------------------------------------


def _export_filename(report: Report, extension: str) -> str:
    stamp = timezone.now().astimezone(BUSINESS_TZ).strftime("%Y%m%d-%H%M")
    return f"{report.slug}-{stamp}.{extension}"


def _export_columns(columns: list[Column]) -> list[Column]:
    return [c for c in columns if c.export]


def csv_response(report: Report, columns: list[Column], rows: QuerySet, totals: dict[str, Any]) -> HttpResponse:
    """All filtered rows as CSV: UTF-8 with a BOM (Excel then reads «ñ» and accents),
    comma-separated, numbers with a dot, times in Bogotá; a last «Total» row."""
    columns = _export_columns(columns)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([c.label for c in columns])
    count = 0
    for row in rows.iterator(chunk_size=2000):
        writer.writerow([c.export_value(row, typed=False) for c in columns])
        count += 1
    writer.writerow(_totals_cells(columns, totals, count, typed=False))
    response = HttpResponse(buffer.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_filename(report, "csv")}"'
    return response


def _totals_cells(columns: list[Column], totals: dict[str, Any], count: int, *, typed: bool) -> list[Any]:
    cells: list[Any] = [f"Total ({count} filas)"]
    for column in columns[1:]:
        value = totals.get(column.key)
        if value is None:
            cells.append(None if typed else "")
        else:
            cells.append(value if typed else str(value))
    return cells


def xlsx_response(report: Report, columns: list[Column], rows: QuerySet, totals: dict[str, Any]) -> HttpResponse:
    """All filtered rows as an Excel workbook with real typed cells (numbers, dates),
    a bold header, frozen first row, and a bold totals row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    columns = _export_columns(columns)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = report.title[:31]
    sheet.append([c.label for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    count = 0
    for row in rows.iterator(chunk_size=2000):
        sheet.append([c.export_value(row, typed=True) for c in columns])
        count += 1
    sheet.append(_totals_cells(columns, totals, count, typed=True))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        number_format = _XLSX_FORMATS.get(column.kind)
        if number_format:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format
        sheet.column_dimensions[letter].width = max(12, min(48, len(column.label) + 4))
    output = io.BytesIO()
    workbook.save(output)
    response = HttpResponse(
        output.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_filename(report, "xlsx")}"'
    return response
