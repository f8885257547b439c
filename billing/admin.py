from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from billing.feed import customers_touch
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
class CustomerAdmin(SimpleHistoryAdmin):
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


@admin.register(InvoiceResolution)
class InvoiceResolutionAdmin(SimpleHistoryAdmin):
    list_display = [
        "number",
        "prefix",
        "range_from",
        "range_to",
        "next_number",
        "level",
        "owner",
        "valid_from",
        "valid_until",
        "active",
    ]
    list_filter = ["level", "active", "institution"]
    search_fields = ["number", "prefix"]
    list_select_related = ["institution", "node", "terminal"]

    @admin.display(description="titular")
    def owner(self, obj):
        return obj.terminal or obj.node or obj.institution
