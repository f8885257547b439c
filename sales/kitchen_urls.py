"""Kitchen endpoints of the POS sync API (relative to /api/v1/)."""

from django.urls import path

from sales.kitchen_api import ComandaListApi, ComandaStatusApi

urlpatterns = [
    path("kitchen/comandas", ComandaListApi.as_view(), name="kitchen-comandas"),
    path("kitchen/comandas/<int:comanda_id>/status", ComandaStatusApi.as_view(), name="kitchen-comanda-status"),
]
