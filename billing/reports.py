"""«Sobregiros»: customers below zero and the offline sales that took them there (a thin
adapter over ``billing.report_selectors``)."""

from __future__ import annotations

from django import forms
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.report_selectors import (
    BEYOND_LIMIT,
    WITHIN_LIMIT,
    overdraft_exposure_by_node,
    overdrawn_customers_list,
)
from paygo.reporting import MONEY, Column, Report, ReportFilterForm, datetime_text, money_text
from paygo.svg_charts import bar_chart_svg

SALE_FILTERS = ("node", "terminal", "date_from", "date_to")


class OverdraftFilterForm(ReportFilterForm):
    status = forms.ChoiceField(
        label="Estado",
        required=False,
        choices=[
            ("", "Todos bajo cero"),
            (BEYOND_LIMIT, "Exceden el cupo de sobregiro"),
            (WITHIN_LIMIT, "Dentro del cupo"),
        ],
    )


def _flagged_sales_text(customer) -> str:
    return "; ".join(
        f"{sale.node.code} {sale.terminal.code}#{sale.seq} {datetime_text(sale.occurred_at)} "
        f"{sale.total} [{', '.join(flag.get_code_display() for flag in sale.flags.all())}] ({sale.pk})"
        for sale in customer.flagged_sales
    )


def _flagged_sales_html(customer) -> str:
    if not customer.flagged_sales:
        return "—"
    items = format_html_join(
        "",
        '<li><a href="{}">{} #{}</a> · {} · {} · {} · <em>{}</em></li>',
        (
            (
                reverse("admin:sales_sale_change", args=[sale.pk]),
                sale.terminal.code,
                sale.seq,
                sale.node.code,
                datetime_text(sale.occurred_at),
                money_text(sale.total),
                ", ".join(flag.get_code_display() for flag in sale.flags.all()),
            )
            for sale in customer.flagged_sales
        ),
    )
    return format_html('<ul class="report-sales">{}</ul>', items)


class OverdraftReport(Report):
    slug = "sobregiros"
    title = "Sobregiros"
    description = (
        "Clientes con saldo bajo cero hoy. «Bajo cero» es cuánto falta para volver a cero; «Exceso sobre el "
        "cupo» es cuánto pasaron su sobregiro permitido (solo posible con ventas sin conexión). Al lado, las "
        "ventas sin conexión marcadas «Sobregiro excedido» o «Saldo no verificado» que los llevaron ahí."
    )
    form_class = OverdraftFilterForm
    search_help = "Código o nombre del cliente"
    default_order = "balance"
    template_name = "admin/reports/sobregiros.html"

    def columns(self) -> list[Column]:
        return [
            Column(
                "code",
                "Cliente",
                order="code",
                link=lambda c: reverse("admin:billing_customer_change", args=[c.pk]),
            ),
            Column("name", "Nombre", order="name"),
            Column("institution__name", "Institución", order="institution__name"),
            Column("balance", "Saldo", MONEY, order="balance", total="balance"),
            Column("overdraft_limit", "Sobregiro permitido", MONEY, order="overdraft_limit"),
            Column("below_zero", "Bajo cero", MONEY, order="below_zero", total="below_zero"),
            Column("over_limit", "Exceso sobre el cupo", MONEY, order="over_limit", total="over_limit"),
            Column(
                "state",
                "Estado",
                value=lambda c: "Excede el cupo" if c.over_limit > 0 else "Dentro del cupo",
                order="over_limit",
            ),
            Column(
                "flagged_sales", "Ventas sin conexión marcadas", value=_flagged_sales_text, html=_flagged_sales_html
            ),
        ]

    def rows(self, filters):
        return overdrawn_customers_list(
            **{k: filters.get(k) for k in ("institution", *SALE_FILTERS, "status")}, q=filters.get("q", "")
        )

    def extra_context(self, request, rows, filters):
        exposure = overdraft_exposure_by_node(customers=rows, **{k: filters.get(k) for k in SALE_FILTERS})
        return {
            "exposure": exposure,
            "chart": bar_chart_svg(
                [(row["label"], row["exposure"]) for row in exposure["rows"]],
                title="Exposición por nodo",
                value_text=money_text,
            ),
        }

    def row_class(self, row) -> str:
        return "row-open" if row.over_limit > 0 else ""
