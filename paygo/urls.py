from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from paygo.errors import json_error_view

admin.site.site_header = "payGO — Back office"
admin.site.site_title = "payGO — Back office"
admin.site.index_title = "Administración"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("paygo.api_urls")),
]

handler404 = json_error_view(404, "not_found", "No encontrado.")
handler500 = json_error_view(500, "server_error", "Error interno; reintente la solicitud.")
