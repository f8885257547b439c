import copy

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from billing.feed import customers_touch
from billing.invoicing import (
    invoice_deferred,
    resolution_save,
    resolution_usage,
    resolution_validate,
    resolution_warnings,
    resolutions_with_warnings_q,
    today_bogota,
)
from billing.models import (
    BalanceMovement,
    BalanceMovementKind,
    Customer,
    InvoiceResolution,
    ProductBlock,
    UnitBalance,
    UnitMovement,
)
from billing.services import AccountError, customer_balance_credit
from nodes.models import NumberingLevel
from paygo.admin_history import HistoryAdmin
from paygo.admin_readonly import ReadOnlyAdminMixin, ReadOnlyInline


class ProductBlockInline(admin.TabularInline):
    model = ProductBlock
    extra = 0
    autocomplete_fields = ["product"]


class UnitBalanceInline(ReadOnlyInline):
    model = UnitBalance
    fields = ["unit_type", "quantity"]
    readonly_fields = fields


class RecentBalanceMovementInline(ReadOnlyInline):
    model = BalanceMovement
    fields = ["occurred_at", "kind", "amount", "note", "created_by"]
    readonly_fields = fields
    verbose_name_plural = "movimientos de saldo (libro)"
    ordering = ["-occurred_at"]
    max_num = 0


@admin.register(Customer)
class CustomerAdmin(HistoryAdmin):
    list_display = ["code", "name", "institution", "balance", "overdraft_limit", "available", "daily_max", "active"]
    list_filter = ["institution", "active"]
    search_fields = ["code", "name"]
    list_select_related = ["institution"]
    readonly_fields = ["balance", "available", "topup_link"]
    inlines = [ProductBlockInline, UnitBalanceInline, RecentBalanceMovementInline]
    fields = [
        "institution",
        "code",
        "name",
        "active",
        "overdraft_limit",
        "daily_max",
        "balance",
        "available",
        "topup_link",
    ]

    @admin.display(description="disponible (saldo + sobregiro)")
    def available(self, obj):
        return obj.available if obj.pk else "—"

    @admin.display(description="recargar")
    def topup_link(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:billing_balancemovement_add") + f"?customer={obj.pk}"
        return format_html('<a class="button" href="{}">Registrar recarga o corrección</a>', url)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Limits, status and blocks are part of what terminals download: publish the change.
        customers_touch(institution_id=form.instance.institution_id, customer_ids=[form.instance.pk])


class BalanceMovementForm(forms.ModelForm):
    kind = forms.ChoiceField(
        label="tipo",
        choices=[
            (BalanceMovementKind.TOPUP, BalanceMovementKind.TOPUP.label),
            (BalanceMovementKind.CORRECTION, BalanceMovementKind.CORRECTION.label),
            (BalanceMovementKind.REFUND, BalanceMovementKind.REFUND.label),
        ],
    )

    class Meta:
        model = BalanceMovement
        fields = ["customer", "kind", "amount", "note"]

    def clean(self):
        data = super().clean()
        amount = data.get("amount")
        if amount is not None:
            if amount == 0:
                raise forms.ValidationError("El valor no puede ser cero.")
            if data.get("kind") == BalanceMovementKind.TOPUP and amount < 0:
                raise forms.ValidationError("Una recarga debe ser positiva; use una corrección para descontar.")
        return data


@admin.register(BalanceMovement)
class BalanceMovementAdmin(admin.ModelAdmin):
    """The balance ledger. Staff add top-ups and corrections; nothing is edited."""

    form = BalanceMovementForm
    list_display = ["occurred_at", "customer", "kind", "amount", "payment", "created_by"]
    list_filter = ["kind", "customer__institution"]
    search_fields = ["customer__code", "customer__name", "note"]
    list_select_related = ["customer", "created_by"]
    date_hierarchy = "occurred_at"
    autocomplete_fields = ["customer"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            created = customer_balance_credit(
                customer=obj.customer,
                amount=obj.amount,
                kind=obj.kind,
                user=request.user,
                note=obj.note,
                occurred_at=timezone.now(),
            )
        except AccountError as exc:  # already validated by the form; kept as a safety net
            raise forms.ValidationError(exc.message) from exc
        obj.pk = created.pk


@admin.register(UnitBalance)
class UnitBalanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["customer", "unit_type", "quantity"]
    list_filter = ["unit_type", "customer__institution"]
    search_fields = ["customer__code", "customer__name"]


@admin.register(UnitMovement)
class UnitMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "customer", "unit_type", "kind", "quantity"]
    list_filter = ["kind", "unit_type"]
    search_fields = ["customer__code", "customer__name"]


@admin.register(ProductBlock)
class ProductBlockAdmin(admin.ModelAdmin):
    list_display = ["customer", "product", "created_at"]
    search_fields = ["customer__code", "customer__name", "product__sku"]
    autocomplete_fields = ["customer", "product"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        customers_touch(institution_id=obj.customer.institution_id, customer_ids=[obj.customer_id])

    def delete_model(self, request, obj):
        customer = obj.customer
        super().delete_model(request, obj)
        customers_touch(institution_id=customer.institution_id, customer_ids=[customer.pk])


class InvoiceResolutionForm(forms.ModelForm):
    class Meta:
        model = InvoiceResolution
        fields = [
            "institution",
            "level",
            "node",
            "terminal",
            "number",
            "resolution_date",
            "prefix",
            "range_from",
            "range_to",
            "valid_from",
            "valid_until",
            "next_number",
            "active",
        ]
        help_texts = {
            "next_number": (
                "Vacío al crear: el inicio del rango. Solo avanza; no puede quedar en un número ya facturado."
            ),
            "prefix": "Los rangos de un mismo prefijo no pueden cruzarse dentro de la institución.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["next_number"].required = False

    def clean(self):
        data = super().clean()
        if data.get("next_number") is None and not self.instance.pk and data.get("range_from") is not None:
            data["next_number"] = data["range_from"]
        if data.get("level") == NumberingLevel.TERMINAL and data.get("terminal") and not data.get("node"):
            data["node"] = data["terminal"].node
        if self.errors:
            return data  # field errors first; the cross-field checks need every field
        candidate = construct_instance(self, copy.copy(self.instance))
        try:
            resolution_validate(resolution=candidate)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict) from exc
        return data


class ResolutionWarningFilter(admin.SimpleListFilter):
    title = "alertas"
    parameter_name = "alertas"

    def lookups(self, request, model_admin):
        return [("con", "Con alertas"), ("sin", "Sin alertas")]

    def queryset(self, request, queryset):
        q = resolutions_with_warnings_q(today=today_bogota())
        if self.value() == "con":
            return queryset.filter(q)
        if self.value() == "sin":
            return queryset.exclude(q)
        return queryset


@admin.register(InvoiceResolution)
class InvoiceResolutionAdmin(HistoryAdmin):
    form = InvoiceResolutionForm
    list_display = [
        "number",
        "prefix",
        "range_from",
        "range_to",
        "next_number",
        "numbers_used",
        "numbers_left",
        "percent_used",
        "level",
        "owner",
        "valid_from",
        "valid_until",
        "active",
        "warning_badge",
    ]
    list_filter = ["level", "active", "institution", ResolutionWarningFilter]
    search_fields = ["number", "prefix"]
    list_select_related = ["institution", "node", "terminal"]
    readonly_fields = ["usage_summary", "warning_list"]
    fieldsets = [
        (None, {"fields": ["institution", "level", "node", "terminal", "active"]}),
        ("Resolución DIAN", {"fields": ["number", "resolution_date", "prefix", "valid_from", "valid_until"]}),
        ("Consecutivos", {"fields": ["range_from", "range_to", "next_number", "usage_summary", "warning_list"]}),
    ]

    def changelist_view(self, request, extra_context=None):
        flagged = InvoiceResolution.objects.filter(resolutions_with_warnings_q(today=today_bogota())).count()
        if flagged and request.method == "GET":
            messages.warning(
                request,
                f"{flagged} resolución(es) activa(s) con alertas (rango casi agotado o vigencia por vencer). "
                "Use el filtro «alertas» para verlas.",
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        # Validated by the form; saving under the institution lock makes the overlap check race-free.
        resolution_save(resolution=obj)

    @admin.display(description="titular")
    def owner(self, obj):
        return obj.terminal or obj.node or obj.institution

    @admin.display(description="usados")
    def numbers_used(self, obj):
        return resolution_usage(obj)[0]

    @admin.display(description="disponibles")
    def numbers_left(self, obj):
        return resolution_usage(obj)[1]

    @admin.display(description="% usado")
    def percent_used(self, obj):
        used, _, size = resolution_usage(obj)
        return f"{number_format(used * 100 / size, 1)} %"

    @admin.display(description="alerta")
    def warning_badge(self, obj):
        warnings = resolution_warnings(resolution=obj, today=today_bogota())
        if not warnings:
            return "—"
        return format_html(
            '<span title="{}" style="background:#ba2121;color:#fff;padding:1px 6px;border-radius:8px;">⚠ {}</span>',
            " ".join(warnings),
            "Alerta" if len(warnings) == 1 else f"{len(warnings)} alertas",
        )

    @admin.display(description="uso del rango")
    def usage_summary(self, obj):
        if not obj.pk:
            return "—"
        used, left, size = resolution_usage(obj)
        return f"{used} de {size} usados ({number_format(used * 100 / size, 1)} %), {left} disponibles"

    @admin.display(description="alertas")
    def warning_list(self, obj):
        if not obj.pk:
            return "—"
        warnings = resolution_warnings(resolution=obj, today=today_bogota())
        if not warnings:
            return "Sin alertas"
        return format_html_join(mark_safe("<br>"), "⚠ {}", ((w,) for w in warnings))


DEFERRED_INVOICE_TEXT = "Pendiente: se numera al sincronizar"
# Reconciled, but the owner's range was exhausted, expired or missing at the time.
WAITING_INVOICE_TEXT = "Pendiente: sin consecutivos disponibles; se numera al agregar o ampliar una resolución"


class SaleInvoiceViewMixin:
    """The "Factura" block on the sale change page: Factura, Consecutivo, Resolución, Rango.

    For ``SaleAdmin``: adds read-only fields and groups them (with the raw invoice
    fields) in their own fieldset, leaving everything else on the page as it was.
    """

    invoice_view_fields = [
        "invoice_view_invoice",
        "invoice_view_consecutive",
        "invoice_view_resolution",
        "invoice_view_range",
        "invoice_source",
    ]
    invoice_raw_fields = ["invoice_resolution", "invoice_prefix", "invoice_number", "invoice_source"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + [f for f in self.invoice_view_fields if f not in fields]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        hidden = set(self.invoice_view_fields) | set(self.invoice_raw_fields)
        rest = [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]
        return [*rest, ("Factura", {"fields": self.invoice_view_fields})]

    def _invoice_value(self, obj, value):
        if obj.invoice_number is not None:
            return value
        if not invoice_deferred(
            offline=obj.offline, invoice_number=obj.invoice_number, numbering_level=obj.node.invoice_numbering_level
        ):
            return "—"
        return WAITING_INVOICE_TEXT if obj.reconciled_at is not None else DEFERRED_INVOICE_TEXT

    @admin.display(description="Factura")
    def invoice_view_invoice(self, obj):
        return self._invoice_value(obj, f"{obj.invoice_prefix}{obj.invoice_number}")

    @admin.display(description="Consecutivo")
    def invoice_view_consecutive(self, obj):
        return self._invoice_value(obj, obj.invoice_number)

    @admin.display(description="Resolución")
    def invoice_view_resolution(self, obj):
        resolution = obj.invoice_resolution
        if resolution is None:
            return self._invoice_value(obj, "—")
        return f"{resolution.number} del {resolution.resolution_date:%d/%m/%Y}"

    @admin.display(description="Rango")
    def invoice_view_range(self, obj):
        resolution = obj.invoice_resolution
        if resolution is None:
            return self._invoice_value(obj, "—")
        return f"{resolution.prefix}{resolution.range_from} – {resolution.prefix}{resolution.range_to}"
