"""Endpoints of the POS sync API declared by this app (relative to /api/v1/)."""

from django.urls import path

from inventory.api import PosCatalogApi

urlpatterns = [
    path("pos/catalog", PosCatalogApi.as_view(), name="pos-catalog"),
]
