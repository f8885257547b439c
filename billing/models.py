"""Customer payGO accounts and their ledgers, blocks, daily maximum, consumable units,
and DIAN invoice resolutions with their consecutive numbers."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from inventory.models import MONEY, Product
from nodes.models import Institution, Node, NumberingLevel, Terminal
from paygo.append_only import AppendOnlyModel


class Customer(models.Model):
    """A student or employee paying from a prepaid balance that may go into overdraft.

    ``balance`` is materialized from :class:`BalanceMovement`; ``change_seq`` is the
    position of its last change in the institution's balance feed (see
    :class:`BalanceFeed`), which terminals read as a delta.

    On PostgreSQL the table also has ``feed_head``, a column the database generates from
    this row's fields in the feed's JSON (migration ``0005_customer_feed_head``): not a
    model field, nothing writes it. A migration that changes the type of ``code``,
    ``name``, the money fields or ``active`` must drop and re-add it (PostgreSQL refuses
    otherwise).
    """

    # No index of its own: the unique (institution, code) leads with it. Every index of the
    # row is written again by each balance change (change_seq is indexed, so never HOT).
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="customers", verbose_name="institución", db_index=False
    )
    code = models.CharField("código", max_length=64)
    name = models.CharField("nombre", max_length=200)
    active = models.BooleanField("activo", default=True)
    overdraft_limit = models.DecimalField(
        "sobregiro permitido", default=Decimal("0"), help_text="Cuánto puede quedar el saldo bajo cero.", **MONEY
    )
    daily_max = models.DecimalField(
        "consumo máximo diario",
        null=True,
        blank=True,
        help_text="Tope de consumo por día (hora de Bogotá). Vacío: sin tope.",
        **MONEY,
    )
    balance = models.DecimalField("saldo", default=Decimal("0"), editable=False, **MONEY)
    change_seq = models.BigIntegerField("secuencia de cambio", default=0, editable=False)
    blocked_products = models.ManyToManyField(
        Product, through="ProductBlock", related_name="blocked_for", blank=True, verbose_name="productos bloqueados"
    )
    history = HistoricalRecords(verbose_name="historial de cliente", excluded_fields=["balance", "change_seq"])

    class Meta:
        verbose_name = "cliente"
        verbose_name_plural = "clientes"
        ordering = ["institution__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "code"], name="customer_code_unique_per_institution"),
            models.CheckConstraint(condition=Q(overdraft_limit__gte=0), name="customer_overdraft_not_negative"),
            models.CheckConstraint(
                condition=Q(daily_max__isnull=True) | Q(daily_max__gte=0), name="customer_daily_max_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["institution", "change_seq", "id"], name="customer_feed_idx")]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def available(self) -> Decimal:
        return self.balance + self.overdraft_limit


class BalanceFeed(models.Model):
    """The per-institution counter behind the balance delta feed.

    Writers lock this row (``SELECT … FOR UPDATE``) and take the next value while holding
    the lock until commit, so sequence numbers become visible in commit order and a reader
    whose cursor is at N never later sees a commit with a sequence ≤ N appear.
    """

    institution = models.OneToOneField(
        Institution, on_delete=models.CASCADE, primary_key=True, related_name="balance_feed"
    )
    last_seq = models.BigIntegerField(default=0)
    # Cursors older than this cannot be served as a delta (e.g. after a restore).
    epoch = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = "secuencia de saldos"
        verbose_name_plural = "secuencias de saldos"

    def __str__(self) -> str:
        return f"{self.institution_id}: {self.last_seq}"


class BalanceMovementKind(models.TextChoices):
    TOPUP = "topup", "Recarga"
    SALE = "sale", "Venta"
    CORRECTION = "correction", "Corrección"
    REFUND = "refund", "Devolución"


class BalanceMovement(AppendOnlyModel):
    """One change of a customer's balance. Append-only: the ledger is the truth."""

    # Every index here is written by each paygo payment reconciled. ``customer`` has none
    # of its own (``balmove_customer_time`` leads with it), and ``created_by`` only a
    # partial one: sale movements have no author. Customer and payment are checked by the
    # database once per statement instead of once per row (paygo.statement_keys, migration
    # 0007; PostgreSQL).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="balance_movements",
        verbose_name="cliente",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField("tipo", max_length=16, choices=BalanceMovementKind.choices)
    amount = models.DecimalField("valor", help_text="Positivo abona, negativo descuenta.", **MONEY)
    occurred_at = models.DateTimeField("fecha del hecho")
    created_at = models.DateTimeField("registrado", auto_now_add=True)
    payment = models.OneToOneField(
        "sales.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="balance_movement",
        verbose_name="pago",
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
        verbose_name = "movimiento de saldo"
        verbose_name_plural = "movimientos de saldo"
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="balmove_customer_time"),
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="balmove_created_by"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="sale", payment__isnull=False) | (~Q(kind="sale") & Q(payment__isnull=True)),
                name="balance_movement_sale_has_payment",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="balance_movement_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.customer.code}"


class ProductBlock(models.Model):
    """A product a customer may not buy (set by parents or the institution)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="blocks", verbose_name="cliente")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="blocks", verbose_name="producto")
    created_at = models.DateTimeField("creado", auto_now_add=True)

    class Meta:
        verbose_name = "producto bloqueado"
        verbose_name_plural = "productos bloqueados"
        constraints = [models.UniqueConstraint(fields=["customer", "product"], name="product_block_unique")]

    def __str__(self) -> str:
        return f"{self.customer.code} ✕ {self.product.sku}"


class UnitBalance(models.Model):
    """Prepaid consumable units (e.g. lunches) a customer holds, materialized from
    :class:`UnitMovement`."""

    # No index of its own: the unique (customer, unit_type) leads with it.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="unit_balances", verbose_name="cliente", db_index=False
    )
    unit_type = models.CharField("tipo de unidad", max_length=32)
    quantity = models.IntegerField("unidades", default=0)

    class Meta:
        verbose_name = "saldo de unidades"
        verbose_name_plural = "saldos de unidades"
        constraints = [models.UniqueConstraint(fields=["customer", "unit_type"], name="unit_balance_unique")]

    def __str__(self) -> str:
        return f"{self.customer.code}: {self.quantity} {self.unit_type}"


class UnitMovementKind(models.TextChoices):
    PURCHASE = "purchase", "Compra de unidades"
    SALE = "sale", "Consumo"
    CORRECTION = "correction", "Corrección"


class UnitMovement(AppendOnlyModel):
    """One change of a customer's consumable units. Append-only."""

    # As for balance movements: ``unitmove_customer_time`` leads with ``customer``, and
    # ``created_by`` is indexed only where set; customer and payment are checked once per
    # statement.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="unit_movements",
        verbose_name="cliente",
        db_index=False,
        db_constraint=False,
    )
    unit_type = models.CharField("tipo de unidad", max_length=32)
    kind = models.CharField("tipo", max_length=16, choices=UnitMovementKind.choices)
    quantity = models.IntegerField("unidades")
    occurred_at = models.DateTimeField("fecha del hecho")
    created_at = models.DateTimeField("registrado", auto_now_add=True)
    payment = models.OneToOneField(
        "sales.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="unit_movement",
        verbose_name="pago",
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
        verbose_name = "movimiento de unidades"
        verbose_name_plural = "movimientos de unidades"
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["customer", "unit_type", "occurred_at"], name="unitmove_customer_time"),
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="unitmove_created_by"),
        ]
        constraints = [models.CheckConstraint(condition=~Q(quantity=0), name="unit_movement_not_zero")]


class InvoiceResolution(models.Model):
    """A DIAN numbering resolution: a prefix and a range of consecutive invoice numbers,
    owned by the institution, a node or a single terminal (register).

    ``next_number`` only moves forward; online numbers are taken with an atomic update,
    and a database constraint on the sale keeps each (resolution, number) unique.
    """

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="resolutions", verbose_name="institución"
    )
    level = models.CharField("nivel", max_length=16, choices=NumberingLevel.choices)
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, null=True, blank=True, related_name="resolutions", verbose_name="nodo"
    )
    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, null=True, blank=True, related_name="resolutions", verbose_name="caja"
    )
    number = models.CharField("número de resolución DIAN", max_length=32)
    resolution_date = models.DateField("fecha de la resolución")
    prefix = models.CharField("prefijo", max_length=8, blank=True)
    range_from = models.PositiveBigIntegerField("rango desde")
    range_to = models.PositiveBigIntegerField("rango hasta")
    valid_from = models.DateField("vigente desde")
    valid_until = models.DateField("vigente hasta")
    next_number = models.PositiveBigIntegerField("siguiente número")
    active = models.BooleanField("activa", default=True)
    history = HistoricalRecords(verbose_name="historial de resolución")

    class Meta:
        verbose_name = "resolución de facturación"
        verbose_name_plural = "resoluciones de facturación"
        ordering = ["institution__name", "prefix", "range_from"]
        constraints = [
            models.CheckConstraint(condition=Q(range_from__lte=F("range_to")), name="resolution_range_ordered"),
            models.CheckConstraint(
                condition=Q(next_number__gte=F("range_from")) & Q(next_number__lte=F("range_to") + 1),
                name="resolution_next_in_range",
            ),
            models.CheckConstraint(condition=Q(valid_from__lte=F("valid_until")), name="resolution_validity_ordered"),
            models.CheckConstraint(
                condition=(
                    Q(level="institution", node__isnull=True, terminal__isnull=True)
                    | Q(level="node", node__isnull=False, terminal__isnull=True)
                    | Q(level="terminal", terminal__isnull=False)
                ),
                name="resolution_owner_matches_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} {self.range_from}–{self.range_to} (res. {self.number})"
