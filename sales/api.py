"""POS sync API endpoints that write and read sales (contract §4, §4b, §5).

The Input serializers describe the contract for the OpenAPI schema only: sale objects
are validated one by one by ``sales.ingest`` (a serializer failing the whole batch would
break partial acceptance, and its messages would not carry the contract's codes).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.authentication import IsSellingTerminal
from paygo.errors import ApplicationError
from paygo.openapi import ErrorSerializer, error_responses
from sales.ingest import sale_batch_ingest, sale_online_record
from sales.selectors import sale_get_for_terminal


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _body_size_check(request) -> None:
    # DRF hands the parser the raw stream, which bypasses DATA_UPLOAD_MAX_MEMORY_SIZE.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit and length > limit:
        raise RequestTooLarge(f"La solicitud excede {limit} bytes.", details={"max_bytes": limit})


def _object_body(request) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise ApplicationError("El cuerpo debe ser un objeto JSON.", code="malformed_batch")
    return data


def _error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


class SaleLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.CharField(help_text='Decimal string, up to 3 places: "2", "0.250".')
    unit_price = serializers.CharField(help_text='Money string with 2 places: "3500.00".')


class SalePaymentSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["paygo", "cash", "card", "units"])
    amount = serializers.CharField(help_text="Money string; a count of units for `units`.")
    unit_type = serializers.CharField(required=False, allow_null=True, help_text="Required for `units`.")


class SaleInvoiceSerializer(serializers.Serializer):
    prefix = serializers.CharField(allow_blank=True)
    number = serializers.IntegerField(min_value=1)
    resolution = serializers.CharField(help_text="DIAN resolution number.")


class SaleInputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Made by the terminal; the idempotency key.")
    seq = serializers.IntegerField(min_value=0)
    occurred_at = serializers.DateTimeField(help_text="RFC 3339 with an offset.")
    offline = serializers.BooleanField()
    customer = serializers.CharField(allow_null=True, required=False)
    lines = SaleLineSerializer(many=True)
    payments = SalePaymentSerializer(many=True)
    invoice = SaleInvoiceSerializer(allow_null=True, required=False)
    known_balance = serializers.CharField(allow_null=True, required=False)


class SaleErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    field = serializers.CharField()
    message = serializers.CharField()


class SaleInvoiceOutputSerializer(serializers.Serializer):
    prefix = serializers.CharField()
    number = serializers.IntegerField()
    resolution = serializers.CharField()
    range_from = serializers.IntegerField()
    range_to = serializers.IntegerField()


class SaleOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "rejected"])
    errors = SaleErrorSerializer(many=True, required=False)
    reconciled = serializers.BooleanField()
    flags = serializers.ListField(child=serializers.CharField())
    invoice = SaleInvoiceOutputSerializer(allow_null=True)
    seq = serializers.IntegerField(required=False)
    occurred_at = serializers.CharField(required=False)
    offline = serializers.BooleanField(required=False)
    customer = serializers.CharField(allow_null=True, required=False)
    total = serializers.CharField(required=False)
    lines = inline_serializer(
        "SaleLineOutput",
        many=True,
        fields={
            "sku": serializers.CharField(),
            "quantity": serializers.CharField(),
            "unit_price": serializers.CharField(),
            "total": serializers.CharField(),
        },
    )
    payments = inline_serializer(
        "SalePaymentOutput",
        many=True,
        fields={
            "method": serializers.CharField(),
            "amount": serializers.CharField(),
            "unit_type": serializers.CharField(allow_null=True),
        },
    )


class SaleBatchUploadApi(APIView):
    """§4: a batch of offline sales; each sale is accepted, a duplicate, or rejected."""

    permission_classes = [IsSellingTerminal]

    @extend_schema_serializer(component_name="SaleBatchUpload")
    class InputSerializer(serializers.Serializer):
        batch_id = serializers.UUIDField()
        sales = SaleInputSerializer(many=True, max_length=500)

    @extend_schema_serializer(component_name="SaleBatchResult")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="SaleBatchResultItem")
        class ResultSerializer(serializers.Serializer):
            id = serializers.CharField(allow_null=True)
            status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
            flags = serializers.ListField(child=serializers.CharField(), required=False)
            errors = SaleErrorSerializer(many=True, required=False)

        batch_id = serializers.CharField()
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = serializers.IntegerField()
        results = ResultSerializer(many=True)

    @extend_schema(
        operation_id="pos_sales_batch_upload",
        request=InputSerializer,
        responses={
            **error_responses(415),
            200: OutputSerializer,
            400: _error_response("Malformed JSON or batch envelope (nothing stored)."),
            401: _error_response("Missing, unknown, revoked or inactive key."),
            403: _error_response("Kitchen keys cannot post sales."),
            413: _error_response(
                "`batch_too_large`: more than 500 sales, or `request_too_large`: body over the size limit "
                "(nothing stored)."
            ),
        },
    )
    def post(self, request):
        _body_size_check(request)
        data = _object_body(request)
        result = sale_batch_ingest(terminal=request.user, batch_id=data.get("batch_id"), sales=data.get("sales"))
        # The results are already in the contract's shape; the serializer documents them.
        return Response(result.as_dict())


class SaleOnlineApi(APIView):
    """§5: one online sale, with every rule enforced before it is stored."""

    permission_classes = [IsSellingTerminal]

    InputSerializer = SaleInputSerializer
    OutputSerializer = SaleOutputSerializer

    @extend_schema(
        operation_id="pos_sale_online_record",
        request=InputSerializer,
        responses={
            **error_responses(413, 415),
            201: OutputSerializer,
            200: OpenApiResponse(response=OutputSerializer, description="Duplicate: the sale was already stored."),
            400: _error_response("Malformed JSON."),
            401: _error_response("Missing, unknown, revoked or inactive key."),
            403: _error_response("Kitchen keys cannot post sales."),
            422: _error_response(
                "Rejected; `error.details.errors` lists every breach: insufficient_stock, product_blocked, "
                "daily_max_exceeded, insufficient_balance, insufficient_units, invoice_range_exhausted, "
                "invoice_resolution_expired, invoice_resolution_missing, "
                "unknown_product, unknown_customer, totals_mismatch, invalid_quantity, malformed, conflict, "
                "invalid_invoice_number. The top-level `error.code` is the first of them."
            ),
        },
    )
    def post(self, request):
        _body_size_check(request)
        result = sale_online_record(terminal=request.user, sale=request.data)
        return Response(result.sale, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SaleDetailApi(APIView):
    """§4b: a sale read back by the terminal that made it (404 for anyone else)."""

    permission_classes = [IsSellingTerminal]

    OutputSerializer = SaleOutputSerializer

    @extend_schema(
        operation_id="pos_sale_detail",
        responses={
            # 405: ``GET pos/sales/batches`` is the batch upload, not a sale called "batches".
            **error_responses(405),
            200: OutputSerializer,
            401: _error_response("Missing, unknown, revoked or inactive key."),
            403: _error_response("Kitchen keys cannot read sales."),
            404: _error_response("No such sale for this terminal."),
        },
    )
    def get(self, request, sale_id: str):
        return Response(sale_get_for_terminal(terminal=request.user, sale_id=sale_id))
