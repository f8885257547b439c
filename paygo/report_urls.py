"""The «Reportes» pages of the admin: which reports exist and their URLs.

Every view is wrapped by ``site.admin_view`` (login, staff, CSRF, no caching) and checks
``sales.view_reports`` itself; the actions check their own permission on top.
"""

from __future__ import annotations

from functools import partial

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from billing.reports import OverdraftReport
from inventory.reports import NegativeStockReport, negative_stock_resolve_view
from paygo.reporting import REPORTS_PERMISSION, Report, report_view
from sales.reports import (
    OfflineExceptionsReport,
    QuarantineReport,
    SyncStatusReport,
    quarantine_discard_view,
    quarantine_reprocess_view,
)

REPORTS: list[Report] = [
    NegativeStockReport(),
    OfflineExceptionsReport(),
    SyncStatusReport(),
    OverdraftReport(),
    QuarantineReport(),
]


def reports_index_view(request, *, site):
    if not request.user.has_perm(REPORTS_PERMISSION):
        raise PermissionDenied
    context = {**site.each_context(request), "title": "Reportes", "reports": REPORTS}
    return TemplateResponse(request, "admin/reports/index.html", context)


def report_urlpatterns(site) -> list:
    urls = [path("reportes/", site.admin_view(partial(reports_index_view, site=site)), name="reports_index")]
    urls += [
        path(
            f"reportes/{report.slug}/",
            site.admin_view(partial(report_view, report=report, site=site)),
            name=f"report_{report.slug}",
        )
        for report in REPORTS
    ]
    urls += [
        path(
            "reportes/inventario-negativo/<int:pk>/resolver/",
            site.admin_view(partial(negative_stock_resolve_view, site=site)),
            name="report_inventario-negativo_resolve",
        ),
        path(
            "reportes/cuarentena/<int:pk>/reprocesar/",
            site.admin_view(partial(quarantine_reprocess_view, site=site)),
            name="report_cuarentena_reprocess",
        ),
        path(
            "reportes/cuarentena/<int:pk>/descartar/",
            site.admin_view(partial(quarantine_discard_view, site=site)),
            name="report_cuarentena_discard",
        ),
    ]
    return urls
