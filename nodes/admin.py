from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from nodes.keys import terminal_key_revoke, terminal_key_rotate
from nodes.models import Institution, Node, Terminal
from paygo.admin_history import HistoryAdmin


@admin.register(Institution)
class InstitutionAdmin(HistoryAdmin):
    list_display = ["code", "name", "nit", "active"]
    list_filter = ["active"]
    search_fields = ["code", "name", "nit"]


class TerminalInline(admin.TabularInline):
    model = Terminal
    extra = 0
    fields = ["code", "name", "kind", "active", "key_status", "last_seen_at"]
    readonly_fields = ["key_status", "last_seen_at"]
    show_change_link = True

    @admin.display(description="llave")
    def key_status(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:nodes_terminal_rotate_key", args=[obj.pk])
        label = f"{obj.key_prefix}… (generar nueva)" if obj.has_key else "Sin llave (generar)"
        return format_html('<a href="{}">{}</a>', url, label)


@admin.register(Node)
class NodeAdmin(HistoryAdmin):
    list_display = [
        "code",
        "name",
        "institution",
        "allow_offline_closed_inventory_sales",
        "use_last_balance_offline",
        "invoice_numbering_level",
        "active",
    ]
    list_filter = [
        "institution",
        "allow_offline_closed_inventory_sales",
        "use_last_balance_offline",
        "invoice_numbering_level",
        "active",
    ]
    search_fields = ["code", "name", "institution__name"]
    list_select_related = ["institution"]
    inlines = [TerminalInline]
    history_list_display = ["allow_offline_closed_inventory_sales", "use_last_balance_offline", "active"]
    fieldsets = [
        (None, {"fields": ["institution", "code", "name", "active"]}),
        (
            "Operación sin conexión",
            {
                "description": (
                    "Qué puede hacer una caja de este nodo cuando pierde Internet. Las reglas que no se "
                    "aplican sin conexión (bloqueos, consumo máximo diario, unidades, autoservicio) quedan "
                    "como alertas en el reporte «Excepciones offline»."
                ),
                "fields": [
                    "allow_offline_closed_inventory_sales",
                    "use_last_balance_offline",
                    "balance_sync_interval_seconds",
                ],
            },
        ),
        ("Facturación", {"fields": ["invoice_numbering_level"]}),
    ]


@admin.register(Terminal)
class TerminalAdmin(HistoryAdmin):
    list_display = ["code", "name", "node", "kind", "active", "key_prefix", "key_created_at", "last_seen_at"]
    list_filter = ["kind", "active", "node__institution", "node"]
    search_fields = ["code", "name", "node__code", "node__name"]
    list_select_related = ["node"]
    readonly_fields = [
        "key_prefix",
        "key_created_at",
        "last_seen_at",
        "last_upload_at",
        "reported_online_since",
        "reported_pending_sales",
        "reported_last_seq",
        "reported_balances_age_seconds",
    ]
    actions = ["rotate_keys", "revoke_keys"]
    history_list_display = ["active", "key_prefix", "key_created_at"]

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/rotate-key/",
                self.admin_site.admin_view(self.rotate_key_view),
                name="nodes_terminal_rotate_key",
            )
        ]
        return urls + super().get_urls()

    def _check_key_permission(self, request):
        if not request.user.has_perm("nodes.rotate_terminal_key"):
            raise PermissionDenied

    def _show_keys(self, request, pairs):
        context = {
            **self.admin_site.each_context(request),
            "title": "Llaves de AP generadas",
            "pairs": pairs,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/nodes/terminal/keys_shown.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def rotate_key_view(self, request, pk):
        """GET asks for confirmation; POST generates the key and shows it once."""
        self._check_key_permission(request)
        terminal = get_object_or_404(Terminal, pk=pk)
        if request.method == "POST":
            key = terminal_key_rotate(terminal=terminal)
            return self._show_keys(request, [(terminal, key)])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Generar nueva llave para {terminal.code}",
            "terminal": terminal,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/nodes/terminal/rotate_key_confirm.html", context)

    @admin.action(description="Generar o rotar la llave de los APs seleccionados", permissions=["rotate_key"])
    def rotate_keys(self, request, queryset):
        pairs = [(terminal, terminal_key_rotate(terminal=terminal)) for terminal in queryset.order_by("pk")]
        return self._show_keys(request, pairs)

    @admin.action(description="Revocar la llave de los APs seleccionados", permissions=["rotate_key"])
    def revoke_keys(self, request, queryset):
        for terminal in queryset.order_by("pk"):
            terminal_key_revoke(terminal=terminal)
        self.message_user(request, f"Llaves revocadas: {queryset.count()}.", messages.WARNING)
        return redirect(request.get_full_path())

    def has_rotate_key_permission(self, request):
        return request.user.has_perm("nodes.rotate_terminal_key")
