"""Endpoints of the POS sync API declared by this app (relative to /api/v1/)."""

from django.urls import path

from sales.api import SaleBatchUploadApi, SaleDetailApi, SaleOnlineApi

urlpatterns = [
    path("pos/sales/batches", SaleBatchUploadApi.as_view(), name="pos-sales-batches"),
    path("pos/sales", SaleOnlineApi.as_view(), name="pos-sales"),
    # Any string: a non-UUID id answers 404 in the contract's error shape, not a bare route miss.
    path("pos/sales/<str:sale_id>", SaleDetailApi.as_view(), name="pos-sale-detail"),
]
