"""The back-office admin site: models regrouped into the sections people look for.

Django groups admin models by app; staff think in "Datos Base" (everything they
configure), "Ventas", "Inventario" and "Clientes", so the index is regrouped here. People
who read the reports (``sales.view_reports``) also get a "Reportes" section, the report
pages under ``/admin/reportes/`` and a dashboard at the top of the index.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import reverse

# Not imported from paygo.reporting: this module loads before the apps (it is the admin's
# AppConfig), and the reporting framework imports models.
REPORTS_PERMISSION = "sales.view_reports"

# (section name, [(app_label, object_name), ...]) in the order shown.
SECTIONS = [
    (
        "Datos Base",
        [
            ("nodes", "Node"),
            ("nodes", "Terminal"),
            ("nodes", "Institution"),
            ("inventory", "Product"),
            ("billing", "Customer"),
            ("billing", "InvoiceResolution"),
        ],
    ),
    (
        "Ventas",
        [
            ("sales", "Sale"),
            ("sales", "QuarantinedSale"),
            ("sales", "SaleFlag"),
            ("sales", "Comanda"),
            ("sales", "UploadBatch"),
            ("sales", "SequenceGap"),
        ],
    ),
    (
        "Inventario",
        [
            ("inventory", "NegativeStockEvent"),
            ("inventory", "NodeStock"),
            ("inventory", "StockMovement"),
            ("inventory", "LedgerVerification"),
        ],
    ),
    (
        "Saldos de clientes",
        [
            ("billing", "BalanceMovement"),
            ("billing", "UnitBalance"),
            ("billing", "UnitMovement"),
            ("billing", "ProductBlock"),
        ],
    ),
]


class PaygoAdminSite(admin.AdminSite):
    site_header = "payGO — Back office"
    site_title = "payGO — Back office"
    index_title = "Administración"

    def get_urls(self):
        from paygo.report_urls import report_urlpatterns

        return report_urlpatterns(self) + super().get_urls()

    def index(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if request.user.has_perm(REPORTS_PERMISSION):
            from paygo.dashboard import dashboard_cards

            extra_context["dashboard_cards"] = dashboard_cards()
        return super().index(request, extra_context)

    def reports_section(self, request):
        """The "Reportes" entry of the index and sidebar, for those allowed to read them."""
        if not request.user.has_perm(REPORTS_PERMISSION):
            return None
        from paygo.report_urls import REPORTS

        return {
            "name": "Reportes",
            "app_label": "reportes",
            "app_url": reverse("admin:reports_index", current_app=self.name),
            "has_module_perms": True,
            "models": [
                {
                    "name": report.title,
                    "object_name": "Report" + report.slug.replace("-", "_"),
                    "admin_url": reverse(f"admin:report_{report.slug}", current_app=self.name),
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
                for report in REPORTS
            ],
        }

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label:
            return app_list
        models = {(app["app_label"], m["object_name"]): (app, m) for app in app_list for m in app["models"]}
        placed = set()
        sections = []
        for index, (name, members) in enumerate(SECTIONS):
            section_models = []
            for key in members:
                if key in models:
                    section_models.append(models[key][1])
                    placed.add(key)
            if section_models:
                first_app = models[members[0]][0] if members[0] in models else None
                sections.append(
                    {
                        "name": name,
                        "app_label": f"section{index}",
                        "app_url": first_app["app_url"] if first_app else "",
                        "has_module_perms": True,
                        "models": section_models,
                    }
                )
        reports = self.reports_section(request)
        if reports:
            sections.insert(0, reports)
        # Whatever is not in a section (auth, beat, axes) keeps its app grouping, after.
        for app in app_list:
            rest = [m for m in app["models"] if (app["app_label"], m["object_name"]) not in placed]
            if rest:
                sections.append({**app, "models": rest})
        return sections


class PaygoAdminConfig(AdminConfig):
    default_site = "paygo.admin_site.PaygoAdminSite"
