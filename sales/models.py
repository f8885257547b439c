"""Sales uploaded by terminals (online and offline), their lines and payments, upload
batches, quarantine, flags, comandas and per-terminal sequence gaps."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.models import Customer, InvoiceResolution
from inventory.models import MONEY, QUANTITY, Product
from nodes.models import Institution, Node, Terminal


class UploadBatch(models.Model):
    """One upload request of offline sales, as the terminal sent it (retries included)."""

    batch_id = models.UUIDField("id del lote")
    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="batches", verbose_name="AP")
    received_at = models.DateTimeField("recibido", db_index=True)
    sales_count = models.PositiveIntegerField("ventas", default=0)
    accepted = models.PositiveIntegerField("aceptadas", default=0)
    duplicates = models.PositiveIntegerField("duplicadas", default=0)
    rejected = models.PositiveIntegerField("rechazadas", default=0)

    class Meta:
        verbose_name = "lote de ventas"
        verbose_name_plural = "lotes de ventas"
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["terminal", "batch_id"], name="batch_terminal_id")]

    def __str__(self) -> str:
        return f"{self.batch_id} ({self.terminal.code})"


class InvoiceSource(models.TextChoices):
    TERMINAL = "terminal", "Numerada por la caja"
    SERVER = "server", "Numerada por el servidor"


class Sale(models.Model):
    """A sale, identified by the UUID the terminal made for it (the idempotency key).

    ``payload_hash`` is a canonical hash of what the terminal sent: a retry with the same
    hash is a duplicate, a different hash under the same id a conflict.
    """

    id = models.UUIDField("id", primary_key=True, default=uuid.uuid4, editable=False)
    # Every index is written by each sale a batch inserts, and again by its reconcile
    # UPDATE (never HOT: it sets reconciled_at, which the partial indexes test). So
    # institution, batch and invoice_resolution have no index of their own: nothing reads
    # sales by institution or by batch (only deleting one would, a rare admin action that
    # may scan), and the lookups by resolution (numbers used, highest number) are served by
    # sale_invoice_number_unique, since a sale has a resolution exactly when it has a number.
    #
    # Institution, node and terminal are checked by the database through two composite
    # keys instead of one per column (migration sales 0005, PostgreSQL; statement keys of
    # the same names since 0009, paygo.statement_keys):
    #   (terminal_id, node_id)     -> nodes_terminal (id, node_id)       "sale_terminal_node_fk"
    #   (node_id, institution_id)  -> nodes_node (id, institution_id)    "sale_node_institution_fk"
    # Each sale references an existing terminal, node and institution as before (the node
    # is a terminal's node, the institution a node's institution), and now also only its
    # own terminal's node and its node's institution, which the single-column keys did not
    # guarantee. Two row checks per sale instead of three at every insert. Django cannot
    # declare a composite foreign key, hence db_constraint=False on the three fields; the
    # unique (id, node) and (id, institution) constraints they reference are declared on
    # Terminal and Node, whose clean() refuses to move a terminal or node that has sales
    # (the database would refuse it too).
    institution = models.ForeignKey(
        Institution,
        on_delete=models.PROTECT,
        related_name="sales",
        verbose_name="institución",
        db_index=False,
        db_constraint=False,
    )
    # node, terminal and customer have no single-column index of their own: the composite
    # indexes below lead with them and serve those lookups.
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="sales", verbose_name="nodo", db_index=False, db_constraint=False
    )
    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="sales", verbose_name="AP", db_index=False, db_constraint=False
    )
    # Customer and batch are checked by the database once per statement instead of once
    # per row (paygo.statement_keys, migration 0009; PostgreSQL).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales",
        verbose_name="cliente",
        db_index=False,
        db_constraint=False,
    )
    batch = models.ForeignKey(
        UploadBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales",
        verbose_name="lote",
        db_index=False,
        db_constraint=False,
    )
    seq = models.BigIntegerField("seq")
    occurred_at = models.DateTimeField("fecha de venta")
    received_at = models.DateTimeField("recibida")
    business_date = models.DateField("día (Bogotá)")
    offline = models.BooleanField("sin conexión")
    total = models.DecimalField("total", **MONEY)
    known_balance = models.DecimalField("saldo conocido por la caja", null=True, blank=True, **MONEY)
    payload_hash = models.CharField("huella del contenido", max_length=64)
    reconciled_at = models.DateTimeField("conciliada", null=True, blank=True)
    # Invoice: empty while deferred (offline at institution/node level) until numbered.
    invoice_resolution = models.ForeignKey(
        InvoiceResolution,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales",
        verbose_name="resolución",
        db_index=False,
    )
    invoice_prefix = models.CharField("prefijo", max_length=8, blank=True)
    invoice_number = models.PositiveBigIntegerField("consecutivo", null=True, blank=True)
    invoice_source = models.CharField("numeración", max_length=16, choices=InvoiceSource.choices, blank=True)

    class Meta:
        verbose_name = "venta"
        verbose_name_plural = "ventas"
        ordering = ["-occurred_at"]
        permissions = [("view_reports", "Puede ver y exportar los reportes")]
        indexes = [
            models.Index(fields=["node", "occurred_at"], name="sale_node_time"),
            models.Index(fields=["terminal", "seq"], name="sale_terminal_seq"),
            models.Index(fields=["customer", "business_date"], name="sale_customer_day"),
            # The unreconciled sales in time of sale, the order reconciliation takes them
            # (sales.reconcile_locks.unreconciled_sales_lock): a chunk reads its 500 from
            # here instead of sorting the whole backlog.
            models.Index(
                fields=["occurred_at", "id"], name="sale_unreconciled_time", condition=Q(reconciled_at__isnull=True)
            ),
            # Reconciled offline sales still waiting for a server invoice number (a range
            # ran out): billing.invoicing.invoices_pending_assign finds them here.
            models.Index(
                fields=["node", "occurred_at"],
                name="sale_invoice_pending",
                condition=Q(offline=True, invoice_number__isnull=True, reconciled_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice_resolution", "invoice_number"],
                name="sale_invoice_number_unique",
                condition=Q(invoice_number__isnull=False),
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="sale_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id}#{self.seq} ({self.id})"


class SaleLine(models.Model):
    # Sale and product are checked by the database once per statement instead of once per
    # row (paygo.statement_keys, migration 0009; PostgreSQL): a batch inserts ~1,500 lines.
    # Indexed by the (sale, position) unique constraint, which leads with it.
    sale = models.ForeignKey(
        Sale, on_delete=models.CASCADE, related_name="lines", verbose_name="venta", db_index=False, db_constraint=False
    )
    position = models.PositiveSmallIntegerField("posición")
    # No index of its own (migration 0006): nothing reads lines by product, and with few
    # products it cost a quarter of every batch's line insert. Deleting a product (refused
    # while it has sales) scans the lines instead.
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        related_name="sale_lines",
        verbose_name="producto",
        db_index=False,
        db_constraint=False,
    )
    quantity = models.DecimalField("cantidad", **QUANTITY)
    unit_price = models.DecimalField("precio unitario", **MONEY)
    total = models.DecimalField("total", **MONEY)

    class Meta:
        verbose_name = "línea de venta"
        verbose_name_plural = "líneas de venta"
        ordering = ["sale", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sale", "position"], name="sale_line_position_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="sale_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


class PaymentMethod(models.TextChoices):
    PAYGO = "paygo", "Saldo payGO"
    CASH = "cash", "Efectivo"
    CARD = "card", "Tarjeta"
    UNITS = "units", "Unidades consumibles"


class Payment(models.Model):
    # Checked once per statement (paygo.statement_keys, migration 0009; PostgreSQL).
    # Indexed by the (sale, position) unique constraint, which leads with it.
    sale = models.ForeignKey(
        Sale,
        on_delete=models.CASCADE,
        related_name="payments",
        verbose_name="venta",
        db_index=False,
        db_constraint=False,
    )
    position = models.PositiveSmallIntegerField("posición")
    method = models.CharField("medio de pago", max_length=16, choices=PaymentMethod.choices)
    amount = models.DecimalField("valor", help_text="En unidades cuando el medio es «unidades».", **MONEY)
    unit_type = models.CharField("tipo de unidad", max_length=32, blank=True)

    class Meta:
        verbose_name = "pago"
        verbose_name_plural = "pagos"
        ordering = ["sale", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sale", "position"], name="payment_position_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount}"


class FlagCode(models.TextChoices):
    NEGATIVE_STOCK = "negative_stock", "Inventario negativo"
    NEGATIVE_STOCK_RISK = "negative_stock_risk", "Riesgo de inventario negativo"
    OVERDRAFT_EXCEEDED = "overdraft_exceeded", "Sobregiro excedido"
    BALANCE_UNVERIFIED = "balance_unverified", "Saldo no verificado"
    BLOCKED_PRODUCT = "blocked_product", "Producto bloqueado"
    DAILY_MAX_EXCEEDED = "daily_max_exceeded", "Consumo diario excedido"
    UNITS_OFFLINE = "units_offline", "Unidades sin conexión"
    SELF_SERVICE_OFFLINE = "self_service_offline", "Autoservicio sin conexión"
    OFFLINE_NOT_ALLOWED = "offline_not_allowed", "Venta sin conexión no permitida"
    PRICE_MISMATCH = "price_mismatch", "Precio distinto al del catálogo"
    CLOCK_SKEW = "clock_skew", "Reloj de la caja desfasado"
    INVOICE_DEFERRED = "invoice_deferred", "Factura numerada al sincronizar"


class SaleFlag(models.Model):
    """A rule an accepted sale broke (offline) or a fact finance must review."""

    # Checked once per statement (paygo.statement_keys, migration 0009; PostgreSQL).
    # Indexed by the (sale, code) unique constraint, which leads with it.
    sale = models.ForeignKey(
        Sale, on_delete=models.CASCADE, related_name="flags", verbose_name="venta", db_index=False, db_constraint=False
    )
    code = models.CharField("alerta", max_length=32, choices=FlagCode.choices)
    detail = models.JSONField("detalle", default=dict, blank=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)

    class Meta:
        verbose_name = "alerta de venta"
        verbose_name_plural = "alertas de venta"
        constraints = [models.UniqueConstraint(fields=["sale", "code"], name="sale_flag_unique")]
        indexes = [models.Index(fields=["code", "created_at"], name="sale_flag_code_time")]

    def __str__(self) -> str:
        return f"{self.get_code_display()} ({self.sale_id})"


class QuarantineStatus(models.TextChoices):
    PENDING = "pending", "Pendiente"
    REPROCESSED = "reprocessed", "Reprocesada"
    DISCARDED = "discarded", "Descartada"


class QuarantinedSale(models.Model):
    """A sale that could not be accepted, kept whole with its raw payload and the reasons.

    Staff fix the cause (e.g. create the product) and reprocess it through the same ingest
    path; nothing a terminal reported is ever dropped.
    """

    sale_id = models.CharField("id de la venta", max_length=64, blank=True, db_index=True)
    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="quarantined_sales", verbose_name="AP"
    )
    batch = models.ForeignKey(
        UploadBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="quarantined", verbose_name="lote"
    )
    raw_payload = models.JSONField("contenido recibido")
    errors = models.JSONField("errores")
    error_codes = models.CharField("códigos de error", max_length=255, blank=True)
    received_at = models.DateTimeField("recibida", db_index=True)
    status = models.CharField(
        "estado", max_length=16, choices=QuarantineStatus.choices, default=QuarantineStatus.PENDING
    )
    processed_at = models.DateTimeField("procesada", null=True, blank=True)
    processed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="procesada por",
    )
    resulting_sale = models.ForeignKey(
        Sale, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name="venta resultante"
    )
    note = models.TextField("nota", blank=True)

    class Meta:
        verbose_name = "venta en cuarentena"
        verbose_name_plural = "ventas en cuarentena"
        ordering = ["-received_at"]
        permissions = [("reprocess_quarantinedsale", "Puede reprocesar ventas en cuarentena")]

    def __str__(self) -> str:
        return f"{self.sale_id or '(sin id)'} — {self.error_codes}"


class ComandaStatus(models.TextChoices):
    PENDING = "pending", "Pendiente"
    IN_PROGRESS = "in_progress", "En preparación"
    READY = "ready", "Lista"
    DELIVERED = "delivered", "Entregada"


class Comanda(models.Model):
    """A kitchen order ticket: one per sale with lines that need preparation."""

    sale = models.OneToOneField(Sale, on_delete=models.PROTECT, related_name="comanda", verbose_name="venta")
    # No index of its own: comanda_node_status leads with it.
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="comandas", verbose_name="nodo", db_index=False
    )
    occurred_at = models.DateTimeField("fecha de venta")
    received_at = models.DateTimeField("recibida")
    late = models.BooleanField("tardía", help_text="Llegó de una venta sin conexión, después de sincronizar.")
    status = models.CharField("estado", max_length=16, choices=ComandaStatus.choices, default=ComandaStatus.PENDING)
    status_changed_at = models.DateTimeField("cambio de estado", null=True, blank=True)
    items = models.JSONField("productos", default=list)

    class Meta:
        verbose_name = "comanda"
        verbose_name_plural = "comandas"
        ordering = ["occurred_at"]
        indexes = [models.Index(fields=["node", "status", "occurred_at"], name="comanda_node_status")]

    def __str__(self) -> str:
        return f"Comanda {self.pk} ({self.get_status_display()})"


class SequenceGap(models.Model):
    """A range of ``seq`` numbers a terminal has not uploaded (yet): possibly lost sales."""

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="seq_gaps", verbose_name="AP")
    first_missing = models.BigIntegerField("primer seq faltante")
    last_missing = models.BigIntegerField("último seq faltante")
    detected_at = models.DateTimeField("detectado", auto_now_add=True)

    class Meta:
        verbose_name = "hueco de secuencia"
        verbose_name_plural = "huecos de secuencia"
        ordering = ["terminal", "first_missing"]
        constraints = [
            models.UniqueConstraint(fields=["terminal", "first_missing"], name="seq_gap_unique"),
            models.CheckConstraint(condition=Q(first_missing__lte=models.F("last_missing")), name="seq_gap_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal.code}: {self.first_missing}–{self.last_missing}"
