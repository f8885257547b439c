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
