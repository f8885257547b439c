"""Endpoints of the POS sync API declared by this app (relative to /api/v1/)."""

from django.urls import path

from billing.api import PosBalancesApi

urlpatterns = [
    path("pos/balances", PosBalancesApi.as_view(), name="pos-balances"),
]
