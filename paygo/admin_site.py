"""The back-office admin site: models regrouped into the sections people look for.

Django groups admin models by app; staff think in "Datos Base" (everything they
configure), "Ventas", "Inventario" and "Clientes", so the index is regrouped here.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

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
        # Whatever is not in a section (auth, beat, axes) keeps its app grouping, after.
        for app in app_list:
            rest = [m for m in app["models"] if (app["app_label"], m["object_name"]) not in placed]
            if rest:
                sections.append({**app, "models": rest})
        return sections


class PaygoAdminConfig(AdminConfig):
    default_site = "paygo.admin_site.PaygoAdminSite"
