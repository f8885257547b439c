"""The POS sync API, version 1 (see docs/pos-sync-api.md). Each app declares its own
endpoints in its ``api_urls`` module, with paths relative to ``/api/v1/``."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from paygo.errors import api_not_found

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include("nodes.api_urls")),
    path("v1/", include("inventory.api_urls")),
    path("v1/", include("billing.api_urls")),
    path("v1/", include("sales.api_urls")),
    path("v1/", include("sales.kitchen_urls")),
    # Last: anything else under /api/ is a 404 in the contract's error shape.
    re_path(r"^.*$", api_not_found),
]
