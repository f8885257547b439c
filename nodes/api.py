"""POS sync API endpoints about the terminal itself: its configuration and heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.models import NumberingLevel, TerminalKind
from nodes.selectors import terminal_config
from nodes.services import terminal_heartbeat_record
from paygo.openapi import error_responses
from paygo.wire_format import RFC3339_DATETIME_RE, business_time_str

PG_INTEGER_MAX = 2_147_483_647  # the reported_* columns are PostgreSQL integers
PG_BIGINT_MAX = 9_223_372_036_854_775_807


class OffsetDateTimeField(serializers.DateTimeField):
    """An RFC 3339 time that must carry its offset: a naive time from a register whose
    clock zone is unknown cannot be placed on the timeline."""

    default_error_messages = {
        "naive": "Indique la fecha y hora con su desfase horario (RFC 3339, p. ej. 2026-11-28T10:00:00-05:00).",
        "future": "La fecha está en el futuro; revise el reloj de la caja.",
    }
    earliest = datetime(2000, 1, 1, tzinfo=UTC)
    future_tolerance = timedelta(days=1)

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None  # out-of-range parts: let DRF report it as invalid
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
            if not RFC3339_DATETIME_RE.fullmatch(value):
                self.fail("invalid", format="RFC 3339")
        result = super().to_internal_value(value)
        if result < self.earliest:
            self.fail("invalid", format="RFC 3339")
        if result > timezone.now() + self.future_tolerance:
            self.fail("future")
        return result


class PosConfigApi(APIView):
    """``GET /api/v1/pos/config``: how this terminal must behave online and offline."""

    @extend_schema_serializer(component_name="PosConfig")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="PosConfigTerminal")
        class TerminalSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            kind = serializers.ChoiceField(choices=TerminalKind.choices)

        @extend_schema_serializer(component_name="PosConfigNode")
        class NodeSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            allow_offline_closed_inventory_sales = serializers.BooleanField(
                help_text="«Permitir ventas de inventario cerrado»."
            )
            use_last_balance_offline = serializers.BooleanField(help_text="«Usar el último balance para ventas payGO».")
            balance_sync_interval_seconds = serializers.IntegerField(min_value=30)

        @extend_schema_serializer(component_name="PosConfigOffline")
        class OfflineSerializer(serializers.Serializer):
            closed_inventory_sales = serializers.BooleanField()
            paygo_balance_sales = serializers.BooleanField()
            comandas = serializers.ChoiceField(choices=[("deferred", "deferred")])
            product_blocks = serializers.BooleanField()
            daily_max_consumption = serializers.BooleanField()
            self_service = serializers.BooleanField()
            consumable_units = serializers.BooleanField()
            invoice_numbering = serializers.ChoiceField(
                choices=[("local", "local"), ("deferred", "deferred")],
                help_text="`local` only with consecutives per register (`numbering_level: terminal`).",
            )

        @extend_schema_serializer(component_name="PosConfigInvoicing")
        class InvoicingSerializer(serializers.Serializer):
            @extend_schema_serializer(component_name="PosConfigResolution")
            class ResolutionSerializer(serializers.Serializer):
                number = serializers.CharField(help_text="DIAN resolution number.")
                prefix = serializers.CharField(allow_blank=True)
                range_from = serializers.IntegerField()
                range_to = serializers.IntegerField()
                valid_until = serializers.DateField()
                next_number = serializers.IntegerField()

            numbering_level = serializers.ChoiceField(choices=NumberingLevel.choices)
            resolution = ResolutionSerializer(
                required=False,
                allow_null=True,
                help_text="Only at terminal level: the register's active resolution (null when it has none).",
            )
            warnings = serializers.ListField(
                child=serializers.CharField(), help_text="Invoicing alerts for the cashier (Spanish); may be empty."
            )

            def to_representation(self, instance):
                data = super().to_representation(instance)
                if "resolution" not in instance:
                    data.pop("resolution", None)  # the contract: absent below terminal level
                return data

        server_time = serializers.DateTimeField(help_text="Now, in Bogotá time with its offset.")
        terminal = TerminalSerializer()
        node = NodeSerializer()
        offline = OfflineSerializer()
        invoicing = InvoicingSerializer()

    @extend_schema(
        operation_id="pos_config",
        summary="Terminal configuration",
        responses={200: OutputSerializer, **error_responses()},
    )
    def get(self, request):
        config = terminal_config(terminal=request.user)
        return Response(self.OutputSerializer(config).data)


class PosHeartbeatApi(APIView):
    """``POST /api/v1/pos/heartbeat``: the terminal reports its sync state (all optional)."""

    @extend_schema_serializer(component_name="PosHeartbeat")
    class InputSerializer(serializers.Serializer):
        online_since = OffsetDateTimeField(
            required=False, allow_null=True, help_text="RFC 3339 with offset: when the connection came back."
        )
        pending_sales = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=PG_INTEGER_MAX, help_text="Sales not yet uploaded."
        )
        last_seq = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=PG_BIGINT_MAX, help_text="Last sale `seq` used."
        )
        balances_cursor_age_seconds = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=0,
            max_value=PG_INTEGER_MAX,
            help_text="Seconds since the last successful balances pull.",
        )

    @extend_schema_serializer(component_name="PosHeartbeatReply")
    class OutputSerializer(serializers.Serializer):
        server_time = serializers.DateTimeField(help_text="Now, in Bogotá time with its offset.")

    @extend_schema(
        operation_id="pos_heartbeat",
        summary="Terminal heartbeat",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 413, 415)},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        terminal_heartbeat_record(terminal=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer({"server_time": business_time_str()}).data)
