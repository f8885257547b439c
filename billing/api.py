"""POS sync API endpoints about customer accounts."""

from __future__ import annotations

import orjson
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors import BALANCES_DEFAULT_LIMIT, BALANCES_MAX_LIMIT, customer_balances_page
from nodes.authentication import IsSellingTerminal
from paygo.openapi import error_responses

MONEY_FIELD = {"max_digits": 14, "decimal_places": 2}


class PosBalancesApi(APIView):
    """``GET /api/v1/pos/balances?cursor=&limit=``: the institution's customer balances,
    as a full snapshot or as the delta since ``cursor``.

    Selling terminals only (POS and kiosks): a kitchen client has no use for customers'
    balances, so its key does not expose them.
    """

    permission_classes = [IsSellingTerminal]

    @extend_schema_serializer(component_name="PosBalancesQuery")
    class InputSerializer(serializers.Serializer):
        cursor = serializers.CharField(
            required=False,
            allow_blank=True,
            trim_whitespace=False,
            help_text="Opaque cursor from the previous answer; omit it for a full snapshot.",
        )
        limit = serializers.IntegerField(
            required=False,
            default=BALANCES_DEFAULT_LIMIT,
            min_value=1,
            max_value=BALANCES_MAX_LIMIT,
            help_text=f"Customers per page (default {BALANCES_DEFAULT_LIMIT}, at most {BALANCES_MAX_LIMIT}).",
        )

    @extend_schema_serializer(component_name="PosBalances")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="PosBalancesCustomer")
        class CustomerSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            balance = serializers.DecimalField(**MONEY_FIELD)
            overdraft_limit = serializers.DecimalField(**MONEY_FIELD)
            available = serializers.DecimalField(help_text="balance + overdraft_limit.", **MONEY_FIELD)
            daily_max = serializers.DecimalField(
                allow_null=True, help_text="Daily consumption cap (Bogotá day), or null.", **MONEY_FIELD
            )
            active = serializers.BooleanField()
            blocked_products = serializers.ListField(child=serializers.CharField(), help_text="SKUs.")
            units = serializers.DictField(
                child=serializers.IntegerField(), help_text="Consumable units held, by unit type."
            )

        full = serializers.BooleanField(
            help_text="True on every page of a full snapshot (no cursor, or one the server can no longer serve)."
        )
        cursor = serializers.CharField(help_text="Send it back on the next pull.")
        has_more = serializers.BooleanField(help_text="Pull again at once with `cursor` for the next page.")
        customers = CustomerSerializer(many=True)

    @extend_schema(
        operation_id="pos_balances",
        summary="Customer balances (snapshot or delta)",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 403)},
    )
    def get(self, request):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = customer_balances_page(
            institution_id=request.user.node.institution_id,
            cursor=query.validated_data.get("cursor"),
            limit=query.validated_data["limit"],
        )
        # The selector writes the customers as the contract's JSON already; the renderer
        # (orjson) embeds that text as it is. Passing them through OutputSerializer would
        # cost seconds on a 20 000-customer page and change nothing (a test checks that
        # the two agree).
        return Response(
            {
                "full": page.full,
                "cursor": page.cursor,
                "has_more": page.has_more,
                "customers": orjson.Fragment(page.customers_json),
            }
        )
