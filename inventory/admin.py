from django import forms
from django.contrib import admin

from inventory.models import (
    LedgerVerification,
    NegativeStockEvent,
    NodeStock,
    Product,
    StockMovement,
    StockMovementKind,
)
from inventory.services import StockError, stock_movement_check, stock_movement_record
from paygo.admin_history import HistoryAdmin
from paygo.admin_readonly import ReadOnlyAdminMixin, ReadOnlyInline


class NodeStockInline(ReadOnlyInline):
    model = NodeStock
    fields = ["node", "quantity", "updated_at"]
    readonly_fields = fields
    verbose_name_plural = "existencias por nodo (calculadas del libro de inventario)"


@admin.register(Product)
class ProductAdmin(HistoryAdmin):
    list_display = [
        "sku",
        "name",
        "institution",
        "price",
        "tracks_inventory",
        "requires_preparation",
        "unit_type",
        "active",
    ]
    list_filter = ["institution", "tracks_inventory", "requires_preparation", "unit_type", "active"]
    search_fields = ["sku", "name"]
    list_select_related = ["institution"]
    inlines = [NodeStockInline]


@admin.register(NodeStock)
class NodeStockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product", "node", "quantity", "updated_at"]
    list_filter = ["node__institution", "node", "product__tracks_inventory"]
    search_fields = ["product__sku", "product__name", "node__code"]
    list_select_related = ["product", "node"]


class StockMovementForm(forms.ModelForm):
    kind = forms.ChoiceField(
        label="tipo",
        choices=[
            (StockMovementKind.RECEIPT, StockMovementKind.RECEIPT.label),
            (StockMovementKind.ADJUSTMENT, StockMovementKind.ADJUSTMENT.label),
            (StockMovementKind.INITIAL, StockMovementKind.INITIAL.label),
        ],
    )

    class Meta:
        model = StockMovement
        fields = ["node", "product", "kind", "quantity", "occurred_at", "note"]

    def clean(self):
        data = super().clean()
        if data.get("node") and data.get("product") and data.get("quantity") is not None:
            try:
                stock_movement_check(
                    node=data["node"], product=data["product"], quantity=data["quantity"], kind=data["kind"]
                )
            except StockError as exc:
                raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    """The stock ledger. New movements only (receipts, adjustments); never edited."""

    form = StockMovementForm
    list_display = ["occurred_at", "node", "product", "kind", "quantity", "sale_line", "created_by"]
    list_filter = ["kind", "node__institution", "node"]
    search_fields = ["product__sku", "product__name", "note"]
    list_select_related = ["node", "product", "created_by"]
    date_hierarchy = "occurred_at"
    autocomplete_fields = ["product"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        created = stock_movement_record(
            node=obj.node,
            product=obj.product,
            quantity=obj.quantity,
            kind=obj.kind,
            user=request.user,
            note=obj.note,
            occurred_at=obj.occurred_at,
        )
        obj.pk = created.pk

    def get_changeform_initial_data(self, request):
        from django.utils import timezone

        return {**super().get_changeform_initial_data(request), "occurred_at": timezone.now()}


@admin.register(NegativeStockEvent)
class NegativeStockEventAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ["product", "node", "started_at", "quantity_before", "quantity_after", "lowest_quantity", "status"]
    list_filter = ["status", "node__institution", "node"]
    search_fields = ["product__sku", "product__name", "node__code"]
    list_select_related = ["product", "node"]
    date_hierarchy = "started_at"


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "stock_rows_checked", "balance_rows_checked", "drift_count"]
