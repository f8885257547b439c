"""POS sync API endpoints about products."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.selectors import node_catalog
from paygo.openapi import error_responses


class PosCatalogApi(APIView):
    """``GET /api/v1/pos/catalog``: the products sellable at this terminal's node."""

    @extend_schema_serializer(component_name="PosCatalog")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="PosCatalogProduct")
        class ProductSerializer(serializers.Serializer):
            sku = serializers.CharField()
            name = serializers.CharField()
            price = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Money, two places.")
            tracks_inventory = serializers.BooleanField(help_text="Closed inventory (stock checked per node).")
            stock = serializers.CharField(
                allow_null=True,
                help_text="Decimal string: stock at this node; null when the product is not tracked.",
            )
            requires_preparation = serializers.BooleanField(help_text="Goes to the kitchen as a comanda.")
            unit_type = serializers.CharField(
                allow_null=True, help_text="Consumable unit type it can be paid with (e.g. ALMUERZO), or null."
            )
            active = serializers.BooleanField()

        products = ProductSerializer(many=True)

    @extend_schema(
        operation_id="pos_catalog",
        summary="Products and stock at this node",
        responses={200: OutputSerializer, **error_responses()},
    )
    def get(self, request):
        # Rows are already in wire format (strings for money and quantities), so they are
        # returned as built: DRF field-by-field rendering would only copy them, slowly.
        return Response({"products": node_catalog(node=request.user.node)})
