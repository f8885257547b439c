from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from paygo import errors

admin.site.site_header = "payGO — Back office"
admin.site.site_title = "payGO — Back office"
admin.site.index_title = "Administración"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("paygo.api_urls")),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
