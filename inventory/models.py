"""Products, the append-only stock ledger, node stock materialized from it, and
negative-stock events for finance."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from nodes.models import Institution, Node
from paygo.append_only import AppendOnlyModel

QUANTITY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 2}


class Product(models.Model):
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="products", verbose_name="institución"
    )
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField("nombre", max_length=200)
    price = models.DecimalField("precio", **MONEY)
    tracks_inventory = models.BooleanField(
        "inventario cerrado",
        default=False,
        help_text="Se controla el inventario por nodo: en línea no se vende sin existencias.",
    )
    requires_preparation = models.BooleanField(
        "requiere preparación", default=False, help_text="Genera una comanda para la cocina."
    )
    unit_type = models.CharField(
        "tipo de unidad consumible",
        max_length=32,
        blank=True,
        help_text="Si se puede pagar con unidades prepagadas (p. ej. ALMUERZO).",
    )
    active = models.BooleanField("activo", default=True)
    history = HistoricalRecords(verbose_name="historial de producto")

    class Meta:
        verbose_name = "producto"
        verbose_name_plural = "productos"
        ordering = ["institution__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "sku"], name="product_sku_unique_per_institution"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class NodeStock(models.Model):
    """Stock of a product at a node, materialized from :class:`StockMovement`.

    Never edited by hand: every change is a movement, and ``verify_ledgers`` checks that
    ``quantity`` equals the sum of the node's movements for the product.
    """

    # No index of its own: the unique (node, product) leads with it.
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="stock", verbose_name="nodo", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock", verbose_name="producto")
    quantity = models.DecimalField("existencias", default=Decimal("0"), **QUANTITY)
    updated_at = models.DateTimeField("actualizado", auto_now=True)

    class Meta:
        verbose_name = "existencia por nodo"
        verbose_name_plural = "existencias por nodo"
        constraints = [models.UniqueConstraint(fields=["node", "product"], name="node_stock_unique")]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.node.code}: {self.quantity}"


class StockMovementKind(models.TextChoices):
    INITIAL = "initial", "Inventario inicial"
    RECEIPT = "receipt", "Entrada"
    SALE = "sale", "Venta"
    ADJUSTMENT = "adjustment", "Ajuste"
    COUNT = "count", "Conteo físico"


class StockMovement(AppendOnlyModel):
    """One change of a node's stock. Append-only: the ledger is the truth."""

    # Every index here is written by each sale line reconciled. ``node`` has none of its
    # own (``stockmove_node_prod_time`` leads with it), and ``created_by`` only a partial
    # one: sale movements have no author, and a user's movements are looked up (deleting
    # a user) among those that have one.
    # Node, product and sale line are checked by the database once per statement instead
    # of once per row (paygo.statement_keys, migration 0004; PostgreSQL).
    node = models.ForeignKey(
        Node,
        on_delete=models.PROTECT,
        related_name="stock_movements",
        verbose_name="nodo",
        db_index=False,
        db_constraint=False,
    )
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        related_name="stock_movements",
        verbose_name="producto",
        db_constraint=False,
    )
    kind = models.CharField("tipo", max_length=16, choices=StockMovementKind.choices)
    quantity = models.DecimalField("cantidad", help_text="Positiva entra, negativa sale.", **QUANTITY)
    occurred_at = models.DateTimeField("fecha del hecho")
    created_at = models.DateTimeField("registrado", auto_now_add=True)
    sale_line = models.OneToOneField(
        "sales.SaleLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stock_movement",
        verbose_name="línea de venta",
        db_constraint=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name="registrado por",
        db_index=False,
    )
    note = models.TextField("nota", blank=True)

    class Meta:
        verbose_name = "movimiento de inventario"
        verbose_name_plural = "movimientos de inventario"
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["node", "product", "occurred_at"], name="stockmove_node_prod_time"),
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="stockmove_created_by"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="sale", sale_line__isnull=False) | (~Q(kind="sale") & Q(sale_line__isnull=True)),
                name="stock_movement_sale_has_line",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} {self.product.sku} @ {self.node.code}"


class NegativeStockStatus(models.TextChoices):
    OPEN = "open", "Abierto"
    RESOLVED = "resolved", "Resuelto"


class NegativeStockEvent(models.Model):
    """A period in which a node's stock of a product was below zero, in time-of-sale order.

    Identified by the sale whose line first took the running stock below zero, so that
    recomputing after late uploads finds the same event again.
    """

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="negative_stock_events", verbose_name="nodo")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="negative_stock_events", verbose_name="producto"
    )
    started_at = models.DateTimeField("negativo desde")
    starting_sale = models.ForeignKey(
        "sales.Sale", on_delete=models.PROTECT, related_name="+", verbose_name="venta que lo inició"
    )
    quantity_before = models.DecimalField("existencias antes", **QUANTITY)
    quantity_after = models.DecimalField("existencias después", **QUANTITY)
    lowest_quantity = models.DecimalField("mínimo alcanzado", **QUANTITY)
    ended_at = models.DateTimeField("fin del negativo", null=True, blank=True)
    sales = models.ManyToManyField("sales.Sale", related_name="negative_stock_events", verbose_name="ventas")
    status = models.CharField(
        "estado", max_length=16, choices=NegativeStockStatus.choices, default=NegativeStockStatus.OPEN
    )
    resolved_at = models.DateTimeField("resuelto", null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="resuelto por",
    )
    resolution_note = models.TextField("nota de resolución", blank=True)
    resolution_movement = models.ForeignKey(
        StockMovement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="movimiento de resolución",
    )
    created_at = models.DateTimeField("detectado", auto_now_add=True)
    history = HistoricalRecords(verbose_name="historial de inventario negativo")

    class Meta:
        verbose_name = "evento de inventario negativo"
        verbose_name_plural = "eventos de inventario negativo"
        ordering = ["-started_at"]
        permissions = [("resolve_negativestockevent", "Puede resolver inventario negativo")]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "product", "starting_sale"], name="negative_stock_event_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.node.code} desde {self.started_at:%Y-%m-%d %H:%M}"


class LedgerVerification(models.Model):
    """The result of one ``verify_ledgers`` run (stock and balances against their ledgers)."""

    started_at = models.DateTimeField("inicio")
    finished_at = models.DateTimeField("fin")
    stock_rows_checked = models.PositiveIntegerField("existencias verificadas", default=0)
    balance_rows_checked = models.PositiveIntegerField("saldos verificados", default=0)
    drift_count = models.PositiveIntegerField("diferencias", default=0)
    drifts = models.JSONField("detalle de diferencias", default=list, blank=True)

    class Meta:
        verbose_name = "verificación de libros"
        verbose_name_plural = "verificaciones de libros"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M}: {self.drift_count} diferencias"
