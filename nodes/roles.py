"""The back-office roles and the permissions each holds.

"Datos Base" edits base data (nodes, APs, products, customers, resolutions, top-ups);
"Finanzas" reads everything, the reports and exports, resolves negative stock and
reprocesses quarantine, but cannot change base data. The data migrations apply these.

Reports («Reportes» in the admin, its dashboard and exports) need ``sales.view_reports``:
only «Finanzas» and superusers hold it. «Datos Base» configures and does not read the
finance reports (they hold the model view permissions, so they can still open a sale or a
quarantined sale in the admin when support asks).
"""

DATA_STAFF_GROUP = "Datos Base"
FINANCE_GROUP = "Finanzas"

# (app_label, model) pairs that are base data, editable by "Datos Base" only.
BASE_DATA_MODELS = [
    ("nodes", "institution"),
    ("nodes", "node"),
    ("nodes", "terminal"),
    ("inventory", "product"),
    ("billing", "customer"),
    ("billing", "productblock"),
    ("billing", "invoiceresolution"),
]

# Models whose rows are written by the system; people only read them.
READ_ONLY_MODELS = [
    ("inventory", "nodestock"),
    ("inventory", "stockmovement"),
    ("inventory", "negativestockevent"),
    ("inventory", "ledgerverification"),
    ("billing", "balancemovement"),
    ("billing", "unitbalance"),
    ("billing", "unitmovement"),
    ("sales", "uploadbatch"),
    ("sales", "sale"),
    ("sales", "saleline"),
    ("sales", "payment"),
    ("sales", "saleflag"),
    ("sales", "quarantinedsale"),
    ("sales", "comanda"),
    ("sales", "sequencegap"),
]


def role_permissions() -> dict[str, list[tuple[str, str]]]:
    """Group name -> list of (app_label, codename)."""
    view_all = [(app, f"view_{model}") for app, model in BASE_DATA_MODELS + READ_ONLY_MODELS]
    edit_base = [
        (app, f"{action}_{model}") for app, model in BASE_DATA_MODELS for action in ("add", "change", "delete")
    ]
    return {
        DATA_STAFF_GROUP: [
            *view_all,
            *edit_base,
            ("nodes", "rotate_terminal_key"),
            # Top-ups, stock receipts and unit purchases are ledger movements.
            ("billing", "add_balancemovement"),
            ("billing", "add_unitmovement"),
            ("inventory", "add_stockmovement"),
        ],
        FINANCE_GROUP: [
            *view_all,
            ("sales", "view_reports"),
            ("inventory", "resolve_negativestockevent"),
            ("sales", "reprocess_quarantinedsale"),
        ],
    }


def roles_apply(*, group_model=None, permission_model=None) -> None:
    """Create or update the role groups with exactly their permissions. Idempotent.

    Run by the data migration (with historical models) and by the demo builder, so the
    roles exist even after a test database flush. Permissions must already exist.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for group_name, perms in role_permissions().items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        wanted = [
            permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in perms
        ]
        group.permissions.set(wanted)
