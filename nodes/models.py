"""Institutions (tenants), nodes (cafeterias/stores) with their offline flags, and APs."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Institution(models.Model):
    """A school or company: the tenant. Everything a terminal sees is scoped to one."""

    code = models.CharField("código", max_length=32, unique=True)
    name = models.CharField("nombre", max_length=200)
    nit = models.CharField("NIT", max_length=32, blank=True)
    active = models.BooleanField("activa", default=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    history = HistoricalRecords(verbose_name="historial de institución")

    class Meta:
        verbose_name = "institución"
        verbose_name_plural = "instituciones"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class NumberingLevel(models.TextChoices):
    INSTITUTION = "institution", "Institución (empresa)"
    NODE = "node", "Nodo"
    TERMINAL = "terminal", "Caja (AP)"


OFFLINE_CLOSED_INVENTORY_HELP = (
    "Permite vender productos de inventario cerrado mientras la caja está sin conexión, sin "
    "verificar existencias. Riesgo: al sincronizar, el inventario del nodo puede quedar en "
    "negativo; esas ventas aparecen en el reporte «Inventario negativo»."
)
USE_LAST_BALANCE_HELP = (
    "Cada caja descarga los saldos de todos los clientes periódicamente y, sin conexión, vende "
    "contra el último saldo conocido, actualizándolo localmente. Riesgo: un cliente que compra en "
    "varias cajas a la vez puede quedar en sobregiro; al sincronizar todas las cajas refrescan los "
    "saldos. Si está apagado, las ventas payGO sin conexión se marcan «saldo no verificado»."
)


def _stored_value(instance: models.Model, attname: str) -> Any:
    """The stored value of ``attname`` in ``instance``'s row (None if there is none),
    read with the row locked (``FOR UPDATE``) until the transaction ends when there is one
    (the admin saves in one): a transaction in flight that holds the row (an upload,
    ``sales.ingest._terminal_hold``) ends first, so a look at its sales made next sees them."""
    rows = type(instance)._default_manager.filter(pk=instance.pk)
    if transaction.get_connection().in_atomic_block:
        rows = rows.select_for_update()
    return rows.values_list(attname, flat=True).first()


class Node(models.Model):
    """A cafeteria or store ("Nodo") with its own stock and its offline behaviour."""

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="nodes", verbose_name="institución"
    )
    code = models.CharField("código", max_length=32, unique=True)
    name = models.CharField("nombre", max_length=200)
    active = models.BooleanField("activo", default=True)
    allow_offline_closed_inventory_sales = models.BooleanField(
        "Permitir ventas de inventario cerrado", default=False, help_text=OFFLINE_CLOSED_INVENTORY_HELP
    )
    use_last_balance_offline = models.BooleanField(
        "Usar el último balance para ventas payGO", default=False, help_text=USE_LAST_BALANCE_HELP
    )
    balance_sync_interval_seconds = models.PositiveIntegerField(
        "intervalo de sincronización de saldos (s)",
        default=300,
        help_text="Cada cuántos segundos las cajas descargan los saldos de los clientes.",
    )
    invoice_numbering_level = models.CharField(
        "nivel de consecutivos de facturación",
        max_length=16,
        choices=NumberingLevel.choices,
        default=NumberingLevel.NODE,
        help_text=(
            "Solo con consecutivos por «Caja» las facturas sin conexión salen numeradas; en otro "
            "nivel Factura, Consecutivo, Resolución y Rango quedan vacíos hasta sincronizar."
        ),
    )
    history = HistoricalRecords(verbose_name="historial de nodo")

    class Meta:
        verbose_name = "nodo"
        verbose_name_plural = "nodos y APs"
        ordering = ["institution__name", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_sync_interval_seconds__gte=30), name="node_sync_interval_min_30s"
            ),
            # The target of sales' (node, institution) foreign key (see Sale): a sale's
            # node belongs to the sale's institution.
            models.UniqueConstraint(fields=["id", "institution"], name="node_id_institution_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self) -> None:
        super().clean()
        # Sales keep the institution of their node, enforced by the database (see Sale):
        # a node that has sold cannot move to another institution. Its sales all carry the
        # stored institution, so only a change of it needs a look at them (one row, not a
        # scan of every sale of the node at each save).
        if self.pk and _stored_value(self, "institution_id") != self.institution_id and self.sales.exists():
            raise ValidationError(
                {"institution": "Este nodo ya tiene ventas registradas en otra institución; no puede cambiarse."}
            )


class TerminalKind(models.TextChoices):
    POS = "pos", "Caja (POS)"
    KIOSK = "kiosk", "Autoservicio (kiosco)"
    KITCHEN = "kitchen", "Cocina"


class Terminal(models.Model):
    """An AP: a register, a self-service kiosk or a kitchen client, with its own API key.

    Only a SHA-256 digest of the key is stored (see ``nodes.keys``); the key itself is
    shown once when it is generated or rotated.
    """

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="terminals", verbose_name="nodo")
    code = models.CharField("código", max_length=48, unique=True)
    name = models.CharField("nombre", max_length=200)
    kind = models.CharField("tipo", max_length=16, choices=TerminalKind.choices, default=TerminalKind.POS)
    active = models.BooleanField("activo", default=True)
    key_prefix = models.CharField("prefijo de la llave", max_length=16, blank=True, editable=False)
    key_hash = models.CharField("huella de la llave", max_length=64, blank=True, editable=False, db_index=True)
    key_created_at = models.DateTimeField("llave generada", null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField("última conexión", null=True, blank=True, editable=False)
    last_upload_at = models.DateTimeField("último envío de ventas", null=True, blank=True, editable=False)
    reported_online_since = models.DateTimeField("en línea desde", null=True, blank=True, editable=False)
    reported_pending_sales = models.PositiveIntegerField(
        "ventas pendientes reportadas", null=True, blank=True, editable=False
    )
    reported_last_seq = models.BigIntegerField("último seq reportado", null=True, blank=True, editable=False)
    reported_balances_age_seconds = models.PositiveIntegerField(
        "antigüedad de saldos reportada (s)", null=True, blank=True, editable=False
    )
    history = HistoricalRecords(verbose_name="historial de AP", excluded_fields=["last_seen_at"])

    class Meta:
        verbose_name = "AP (terminal)"
        verbose_name_plural = "APs (terminales)"
        ordering = ["node__code", "code"]
        permissions = [("rotate_terminal_key", "Puede generar o revocar llaves de APs")]
        constraints = [
            # The target of sales' (terminal, node) foreign key (see Sale): a sale's
            # terminal belongs to the sale's node.
            models.UniqueConstraint(fields=["id", "node"], name="terminal_id_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self) -> None:
        super().clean()
        # Sales keep the node of their terminal, enforced by the database (see Sale): an AP
        # that has sold cannot move to another node. As for a node, only a change needs a
        # look at its sales, made with the row locked (an upload in flight finishes first).
        if self.pk and _stored_value(self, "node_id") != self.node_id and self.sales.exists():
            raise ValidationError({"node": "Esta AP ya tiene ventas registradas en otro nodo; no puede cambiarse."})

    @property
    def has_key(self) -> bool:
        return bool(self.key_hash)
