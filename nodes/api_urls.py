"""Endpoints of the POS sync API declared by this app (relative to /api/v1/)."""

from django.urls import path

from nodes.api import PosConfigApi, PosHeartbeatApi

urlpatterns = [
    path("pos/config", PosConfigApi.as_view(), name="pos-config"),
    path("pos/heartbeat", PosHeartbeatApi.as_view(), name="pos-heartbeat"),
]
