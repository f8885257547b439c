"""The deterministic demo: two institutions, their nodes, APs, products, stock and customers.

Built through the real services (ledger movements for stock, top-ups and units), so the
demo's balances and stock are consistent with their ledgers like any real data.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from billing.feed import customers_touch
from billing.models import (
    BalanceFeed,
    BalanceMovement,
    BalanceMovementKind,
    Customer,
    InvoiceResolution,
    ProductBlock,
    UnitBalance,
    UnitMovement,
)
from billing.services import customer_balance_credit, customer_units_add
from inventory.models import (
    LedgerVerification,
    NegativeStockEvent,
    NodeStock,
    Product,
    StockMovement,
    StockMovementKind,
)
from inventory.services import stock_movement_record
from nodes.keys import KEY_PREFIX, key_digest
from nodes.models import Institution, Node, NumberingLevel, Terminal, TerminalKind
from nodes.roles import DATA_STAFF_GROUP, FINANCE_GROUP, roles_apply
from sales.models import Comanda, Payment, QuarantinedSale, Sale, SaleFlag, SaleLine, SequenceGap, UploadBatch

DEMO_SECRET = "payGO-demo"  # only derives the demo's own keys and passwords


def _demo_secret(label: str, length: int = 32) -> str:
    return hmac.new(DEMO_SECRET.encode(), label.encode(), hashlib.sha256).hexdigest()[:length]


@dataclass(frozen=True)
class DemoUser:
    username: str
    group: str | None
    superuser: bool

    @property
    def password(self) -> str:
        return f"demo-{_demo_secret('password:' + self.username, 12)}"


USERS = [
    DemoUser("admin", None, True),
    DemoUser("finanzas", FINANCE_GROUP, False),
    DemoUser("datosbase", DATA_STAFF_GROUP, False),
]

INSTITUTIONS = [
    {"code": "COL-SANJOSE", "name": "Colegio San José", "nit": "860012345-1"},
    {"code": "EMP-ANDINA", "name": "Alimentos Andina S.A.S.", "nit": "900765432-7"},
]

NODES = [
    # Both offline flags on, consecutives per register: offline invoices are numbered.
    {"code": "N1", "institution": "COL-SANJOSE", "name": "Cafetería Central", "offline": True, "level": "terminal"},
    # Both flags off, consecutives per node: offline invoices are deferred.
    {"code": "N2", "institution": "COL-SANJOSE", "name": "Tienda Bloque B", "offline": False, "level": "node"},
    {"code": "N3", "institution": "EMP-ANDINA", "name": "Casino Planta Norte", "offline": True, "level": "institution"},
]

TERMINALS = [
    ("N1-CAJA-01", "N1", "Caja 1", TerminalKind.POS),
    ("N1-CAJA-02", "N1", "Caja 2", TerminalKind.POS),
    ("N1-KIOSCO-01", "N1", "Kiosco autoservicio", TerminalKind.KIOSK),
    ("N1-COCINA-01", "N1", "Cocina central", TerminalKind.KITCHEN),
    ("N2-CAJA-01", "N2", "Caja tienda", TerminalKind.POS),
    ("N3-CAJA-01", "N3", "Caja casino 1", TerminalKind.POS),
    ("N3-CAJA-02", "N3", "Caja casino 2", TerminalKind.POS),
    ("N3-COCINA-01", "N3", "Cocina casino", TerminalKind.KITCHEN),
]

# sku, name, price, tracks_inventory, requires_preparation, unit_type, stock per node
PRODUCTS = {
    "COL-SANJOSE": [
        ("SKU-EMPANADA", "Empanada de carne", "3500.00", True, False, None, {"N1": 40, "N2": 15}),
        ("SKU-GASEOSA", "Gaseosa 350 ml", "2500.00", True, False, None, {"N1": 24, "N2": 12}),
        ("SKU-AGUA", "Agua sin gas 600 ml", "2000.00", True, False, None, {"N1": 30, "N2": 10}),
        ("SKU-SANDWICH", "Sándwich de pollo", "6500.00", True, True, None, {"N1": 4, "N2": 2}),
        ("SKU-PAPAS", "Papas fritas de paquete", "2800.00", True, False, None, {"N1": 20, "N2": 8}),
        ("SKU-CHOCOLATINA", "Chocolatina", "2200.00", True, False, None, {"N1": 25, "N2": 10}),
        ("SKU-ALMUERZO", "Almuerzo del día", "12000.00", False, True, "ALMUERZO", {}),
        ("SKU-JUGO", "Jugo natural de naranja", "3000.00", False, False, None, {}),
        ("SKU-FRUTA", "Porción de fruta", "1500.00", False, False, None, {}),
        ("SKU-AREPA", "Arepa con queso", "3200.00", False, True, None, {}),
    ],
    "EMP-ANDINA": [
        ("AND-CAFE", "Café tinto", "1800.00", False, False, None, {}),
        ("AND-ALMUERZO", "Almuerzo ejecutivo", "15000.00", False, True, "ALMUERZO", {}),
        ("AND-GASEOSA", "Gaseosa 400 ml", "3000.00", True, False, None, {"N3": 18}),
        ("AND-PAN", "Pan de bono", "1500.00", True, False, None, {"N3": 30}),
        ("AND-SANDWICH", "Sándwich cubano", "9500.00", True, True, None, {"N3": 5}),
    ],
}

FIRST_NAMES = [
    "Ana",
    "Juan",
    "Valentina",
    "Santiago",
    "Mariana",
    "Sebastián",
    "Isabella",
    "Mateo",
    "Sofía",
    "Samuel",
    "Daniela",
    "Nicolás",
    "Gabriela",
    "Alejandro",
    "Camila",
    "David",
    "Luciana",
    "Andrés",
    "Sara",
    "Felipe",
]
LAST_NAMES = [
    "Pérez",
    "Gómez",
    "Rodríguez",
    "Martínez",
    "López",
    "García",
    "Hernández",
    "Ramírez",
    "Torres",
    "Díaz",
    "Moreno",
    "Vargas",
    "Rojas",
    "Castro",
    "Jiménez",
    "Ortiz",
    "Muñoz",
    "Suárez",
    "Restrepo",
    "Castaño",
]


def terminal_demo_key(code: str) -> str:
    return KEY_PREFIX + "demo_" + _demo_secret("terminal:" + code, 40)


def _demo_reset(institution_codes: list[str]) -> None:
    """Delete everything the demo institutions hold (sales, ledgers, base data)."""
    institutions = Institution.objects.filter(code__in=institution_codes)
    sales = Sale.objects.filter(institution__in=institutions)
    NegativeStockEvent.objects.filter(node__institution__in=institutions).delete()
    Comanda.objects.filter(sale__in=sales).delete()
    SaleFlag.objects.filter(sale__in=sales).delete()
    StockMovement.objects.filter(node__institution__in=institutions).purge()
    BalanceMovement.objects.filter(customer__institution__in=institutions).purge()
    UnitMovement.objects.filter(customer__institution__in=institutions).purge()
    QuarantinedSale.objects.filter(terminal__node__institution__in=institutions).delete()
    Payment.objects.filter(sale__in=sales).delete()
    SaleLine.objects.filter(sale__in=sales).delete()
    sales.delete()
    UploadBatch.objects.filter(terminal__node__institution__in=institutions).delete()
    SequenceGap.objects.filter(terminal__node__institution__in=institutions).delete()
    NodeStock.objects.filter(node__institution__in=institutions).delete()
    UnitBalance.objects.filter(customer__institution__in=institutions).delete()
    ProductBlock.objects.filter(customer__institution__in=institutions).delete()
    Customer.objects.filter(institution__in=institutions).delete()
    InvoiceResolution.objects.filter(institution__in=institutions).delete()
    Product.objects.filter(institution__in=institutions).delete()
    Terminal.objects.filter(node__institution__in=institutions).delete()
    Node.objects.filter(institution__in=institutions).delete()
    BalanceFeed.objects.filter(institution__in=institutions).delete()
    institutions.delete()
    LedgerVerification.objects.all().delete()


def _customers_for(institution: Institution, rng: random.Random, count: int) -> list[dict[str, Any]]:
    prefix = "C" if institution.code == "COL-SANJOSE" else "E"
    people = []
    for index in range(count):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)}"
        people.append(
            {
                "code": f"{prefix}-{index + 1:06d}",
                "name": name,
                "balance": Decimal(rng.choice([5000, 10000, 15000, 20000, 30000, 50000])),
                "overdraft_limit": Decimal(rng.choice([0, 0, 5000, 10000])),
                "daily_max": None,
                "blocked": [],
                "units": {},
            }
        )
    return people


SPECIAL_CUSTOMERS = {
    "COL-SANJOSE": [
        # The contract's example customer: a block, a daily maximum and lunch units.
        {
            "code": "C-000123",
            "name": "Ana Pérez",
            "balance": Decimal("12000"),
            "overdraft_limit": Decimal("5000"),
            "daily_max": Decimal("20000"),
            "blocked": ["SKU-GASEOSA"],
            "units": {"ALMUERZO": 12},
        },
        # Near the overdraft limit: 500 pesos of room left.
        {
            "code": "C-000200",
            "name": "Tomás Restrepo Vélez",
            "balance": Decimal("-4500"),
            "overdraft_limit": Decimal("5000"),
            "daily_max": None,
            "blocked": [],
            "units": {},
        },
        {
            "code": "C-000201",
            "name": "Lucía Castaño Mejía",
            "balance": Decimal("8000"),
            "overdraft_limit": Decimal("0"),
            "daily_max": Decimal("10000"),
            "blocked": ["SKU-CHOCOLATINA", "SKU-PAPAS"],
            "units": {"ALMUERZO": 5},
        },
    ],
    "EMP-ANDINA": [
        {
            "code": "E-000100",
            "name": "Carlos Medina Ruiz",
            "balance": Decimal("40000"),
            "overdraft_limit": Decimal("20000"),
            "daily_max": Decimal("30000"),
            "blocked": [],
            "units": {"ALMUERZO": 20},
        },
    ],
}


@transaction.atomic
def demo_seed(*, customers_per_institution: int = 40) -> dict[str, Any]:
    """Create (or reset to) the demo and return what a client needs, as the contract says.

    Idempotent: running it twice leaves the same demo (same codes, keys, passwords,
    balances and stock). Locks: none beyond the ledgers' own.
    """
    _demo_reset([i["code"] for i in INSTITUTIONS])
    rng = random.Random(2026)
    now = timezone.now()
    opening = now - timedelta(days=1)
    output: dict[str, Any] = {
        "institutions": [],
        "nodes": [],
        "terminals": [],
        "products": [],
        "customers": [],
    }

    roles_apply()
    User = get_user_model()
    for demo_user in USERS:
        user, _ = User.objects.get_or_create(username=demo_user.username)
        user.is_staff = True
        user.is_superuser = demo_user.superuser
        user.is_active = True
        user.email = f"{demo_user.username}@demo.paygo.co"
        user.set_password(demo_user.password)
        user.save()
        user.groups.set(Group.objects.filter(name=demo_user.group) if demo_user.group else [])
        key = "admin" if demo_user.superuser else ("finance" if demo_user.group == FINANCE_GROUP else "data_staff")
        output[key] = {"username": demo_user.username, "password": demo_user.password}

    institutions = {}
    for spec in INSTITUTIONS:
        institution = Institution.objects.create(**spec)
        institutions[spec["code"]] = institution
        output["institutions"].append({"code": institution.code, "name": institution.name})

    nodes = {}
    for spec in NODES:
        node = Node.objects.create(
            institution=institutions[spec["institution"]],
            code=spec["code"],
            name=spec["name"],
            allow_offline_closed_inventory_sales=spec["offline"],
            use_last_balance_offline=spec["offline"],
            invoice_numbering_level=spec["level"],
        )
        nodes[node.code] = node
        output["nodes"].append(
            {
                "code": node.code,
                "institution": spec["institution"],
                "name": node.name,
                "allow_offline_closed_inventory_sales": node.allow_offline_closed_inventory_sales,
                "use_last_balance_offline": node.use_last_balance_offline,
                "numbering_level": node.invoice_numbering_level,
            }
        )

    terminals = {}
    for code, node_code, name, kind in TERMINALS:
        key = terminal_demo_key(code)
        terminal = Terminal.objects.create(
            node=nodes[node_code],
            code=code,
            name=name,
            kind=kind,
            key_prefix=key[: len(KEY_PREFIX) + 6],
            key_hash=key_digest(key),
            key_created_at=now,
        )
        terminals[code] = terminal
        output["terminals"].append({"code": code, "node": node_code, "kind": kind, "name": name, "key": key})

    # Resolutions: one per numbering owner, as each node's level asks.
    valid_from = date(now.year, 1, 1)
    valid_until = date(now.year + 1, 6, 30)
    resolution_number = 18764000001
    next_range = 1
    for spec in NODES:
        node = nodes[spec["code"]]
        institution = node.institution
        if spec["level"] == NumberingLevel.TERMINAL:
            owners = [
                {"level": NumberingLevel.TERMINAL, "node": node, "terminal": t}
                for t in terminals.values()
                if t.node_id == node.pk and t.kind != TerminalKind.KITCHEN
            ]
        elif spec["level"] == NumberingLevel.NODE:
            owners = [{"level": NumberingLevel.NODE, "node": node, "terminal": None}]
        else:
            owners = [{"level": NumberingLevel.INSTITUTION, "node": None, "terminal": None}]
        for owner in owners:
            InvoiceResolution.objects.create(
                institution=institution,
                number=str(resolution_number),
                resolution_date=valid_from,
                prefix="FE",
                range_from=next_range,
                range_to=next_range + 4999,
                valid_from=valid_from,
                valid_until=valid_until,
                next_number=next_range,
                **owner,
            )
            resolution_number += 1
            next_range += 5000

    products = {}
    for institution_code, rows in PRODUCTS.items():
        institution = institutions[institution_code]
        for sku, name, price, tracks, prep, unit_type, stock in rows:
            product = Product.objects.create(
                institution=institution,
                sku=sku,
                name=name,
                price=Decimal(price),
                tracks_inventory=tracks,
                requires_preparation=prep,
                unit_type=unit_type or "",
            )
            products[(institution_code, sku)] = product
            for node_code, quantity in stock.items():
                stock_movement_record(
                    node=nodes[node_code],
                    product=product,
                    quantity=Decimal(quantity),
                    kind=StockMovementKind.INITIAL,
                    note="Inventario inicial de la demo",
                    occurred_at=opening,
                )
            output["products"].append(
                {
                    "sku": sku,
                    "institution": institution_code,
                    "name": name,
                    "price": price,
                    "tracks_inventory": tracks,
                    "requires_preparation": prep,
                    "unit_type": unit_type,
                    "stock": {node_code: str(quantity) for node_code, quantity in stock.items()},
                }
            )

    for institution_code, institution in institutions.items():
        people = SPECIAL_CUSTOMERS[institution_code] + _customers_for(institution, rng, customers_per_institution)
        for person in people:
            customer = Customer.objects.create(
                institution=institution,
                code=person["code"],
                name=person["name"],
                overdraft_limit=person["overdraft_limit"],
                daily_max=person["daily_max"],
            )
            balance = person["balance"]
            if balance > 0:
                customer_balance_credit(
                    customer=customer, amount=balance, note="Recarga inicial de la demo", occurred_at=opening
                )
            elif balance < 0:
                customer_balance_credit(
                    customer=customer,
                    amount=balance,
                    kind=BalanceMovementKind.CORRECTION,
                    note="Consumo previo de la demo",
                    occurred_at=opening,
                )
            for sku in person["blocked"]:
                ProductBlock.objects.create(customer=customer, product=products[(institution_code, sku)])
            for unit_type, quantity in person["units"].items():
                customer_units_add(
                    customer=customer,
                    unit_type=unit_type,
                    quantity=quantity,
                    note="Unidades de la demo",
                    occurred_at=opening,
                )
            customers_touch(institution_id=institution.pk, customer_ids=[customer.pk])
            output["customers"].append(
                {
                    "code": customer.code,
                    "institution": institution_code,
                    "name": customer.name,
                    "balance": f"{balance:.2f}",
                    "overdraft_limit": f"{customer.overdraft_limit:.2f}",
                    "daily_max": f"{customer.daily_max:.2f}" if customer.daily_max is not None else None,
                    "blocked_products": list(person["blocked"]),
                    "units": dict(person["units"]),
                }
            )
    return output
