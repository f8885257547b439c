"""Endpoints of the POS sync API declared by this app (relative to /api/v1/)."""

urlpatterns: list = []
