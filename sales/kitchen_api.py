"""Kitchen endpoints of the POS sync API (contract section 6): thin views over
:mod:`sales.kitchen`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.authentication import IsKitchenTerminal
from paygo.openapi import ErrorSerializer, error_responses
from sales.kitchen import comanda_status_advance, node_comandas
from sales.models import ComandaStatus


class ComandaItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.CharField()


@extend_schema_serializer(component_name="Comanda")
class ComandaOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sale_id = serializers.UUIDField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    late = serializers.BooleanField()
    status = serializers.ChoiceField(choices=ComandaStatus.choices)
    items = ComandaItemSerializer(many=True)


class ComandaListApi(APIView):
    """``GET /api/v1/kitchen/comandas?status=pending``: the node's comandas by time of sale."""

    permission_classes = [IsKitchenTerminal]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ComandaStatus.choices, required=False)

    @extend_schema_serializer(component_name="ComandaList")
    class OutputSerializer(serializers.Serializer):
        comandas = ComandaOutputSerializer(many=True)

    @extend_schema(
        operation_id="kitchen_comandas_list",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=ComandaStatus.values,
                description="Estado; sin él, las comandas aún no entregadas.",
            )
        ],
        responses={200: OutputSerializer, **error_responses(400, 403)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        comandas = node_comandas(node=request.user.node, status=filters.validated_data.get("status"))
        return Response(self.OutputSerializer({"comandas": comandas}).data)


class ComandaStatusApi(APIView):
    """``POST /api/v1/kitchen/comandas/{id}/status``: move a comanda forward."""

    permission_classes = [IsKitchenTerminal]

    @extend_schema_serializer(component_name="ComandaStatusChange")
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ComandaStatus.choices)

    @extend_schema(
        operation_id="kitchen_comanda_status",
        request=InputSerializer,
        responses={
            200: ComandaOutputSerializer,
            **error_responses(400, 403, 404, 413, 415),
            409: OpenApiResponse(
                ErrorSerializer, description="A comanda only moves forward (`comanda_status_backwards`)."
            ),
        },
    )
    def post(self, request, comanda_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comanda = comanda_status_advance(
            node=request.user.node, comanda_id=comanda_id, status=serializer.validated_data["status"]
        )
        return Response(ComandaOutputSerializer(comanda).data)
