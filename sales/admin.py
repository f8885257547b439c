from django.contrib import admin
from django.db.models import Count

from billing.admin import SaleInvoiceViewMixin
from billing.invoicing import PENDING_Q
from paygo.admin_readonly import ReadOnlyAdminMixin, ReadOnlyInline
from sales.models import Comanda, Payment, QuarantinedSale, Sale, SaleFlag, SaleLine, SequenceGap, UploadBatch


class SaleLineInline(ReadOnlyInline):
    model = SaleLine
    fields = ["position", "product", "quantity", "unit_price", "total"]
    readonly_fields = fields


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ["position", "method", "amount", "unit_type"]
    readonly_fields = fields


class SaleFlagInline(ReadOnlyInline):
    model = SaleFlag
    fields = ["code", "detail", "created_at"]
    readonly_fields = fields


class InvoiceStateFilter(admin.SimpleListFilter):
    title = "factura"
    parameter_name = "invoice"

    def lookups(self, request, model_admin):
        return [
            ("numbered", "Numerada"),
            ("pending", "Pendiente de número (sin rango disponible)"),
            ("none", "Sin factura"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "numbered":
            return queryset.filter(invoice_number__isnull=False)
        if self.value() == "pending":
            return queryset.filter(PENDING_Q)
        if self.value() == "none":
            return queryset.filter(invoice_number__isnull=True)
        return queryset


@admin.register(Sale)
class SaleAdmin(SaleInvoiceViewMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "terminal",
        "seq",
        "customer",
        "total",
        "offline",
        "invoice_display",
        "reconciled_at",
        "flag_count",
    ]
    list_filter = [
        "offline",
        InvoiceStateFilter,
        "node__institution",
        "node",
        "terminal",
        "flags__code",
        "business_date",
    ]
    search_fields = ["=id", "customer__code", "customer__name", "terminal__code"]
    list_select_related = ["terminal", "customer"]
    date_hierarchy = "occurred_at"
    inlines = [SaleLineInline, PaymentInline, SaleFlagInline]
    readonly_fields = [f.name for f in Sale._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(flag_total=Count("flags", distinct=True))

    @admin.display(description="alertas", ordering="flag_total")
    def flag_count(self, obj):
        return obj.flag_total

    @admin.display(description="factura")
    def invoice_display(self, obj):
        if obj.invoice_number is None:
            return "—"
        return f"{obj.invoice_prefix}{obj.invoice_number}"


@admin.register(SaleFlag)
class SaleFlagAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["sale", "code", "created_at"]
    list_filter = ["code", "sale__node"]
    search_fields = ["=sale__id"]
    list_select_related = ["sale"]


@admin.register(QuarantinedSale)
class QuarantinedSaleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "terminal", "sale_id", "error_codes", "status"]
    list_filter = ["status", "terminal__node", "terminal"]
    search_fields = ["sale_id", "error_codes"]
    list_select_related = ["terminal"]
    readonly_fields = [f.name for f in QuarantinedSale._meta.fields]


@admin.register(UploadBatch)
class UploadBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "terminal", "batch_id", "sales_count", "accepted", "duplicates", "rejected"]
    list_filter = ["terminal__node", "terminal"]
    search_fields = ["=batch_id"]
    list_select_related = ["terminal"]


@admin.register(Comanda)
class ComandaAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "node", "occurred_at", "received_at", "late", "status"]
    list_filter = ["status", "late", "node"]
    list_select_related = ["node"]


@admin.register(SequenceGap)
class SequenceGapAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["terminal", "first_missing", "last_missing", "detected_at"]
    list_filter = ["terminal__node"]
    list_select_related = ["terminal"]
