"""What the OpenAPI schema says about every endpoint: the error shape and its responses.

Endpoints list the errors they can answer with ``error_responses(...)`` so the published
schema (``/api/schema/``) describes the real bodies, not DRF's defaults.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid_request`.")
    message = serializers.CharField(help_text="For people (Spanish).")
    details = serializers.DictField(help_text="Code-specific details; `{}` when there are none.")


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_ERROR_DESCRIPTIONS = {
    400: "Invalid request (`invalid_request` with `details.fields`, or `malformed_json`).",
    401: "Missing, unknown, revoked or inactive terminal key (`not_authenticated`, `authentication_failed`).",
    403: "The terminal may not use this endpoint (`permission_denied`).",
    404: "Not found (`not_found`).",
    405: "Method not allowed (`method_not_allowed`).",
    413: "Request body too large (`request_too_large`).",
    415: "Body is not `application/json` (`unsupported_media_type`).",
    429: "Too many requests (`rate_limited`); wait `Retry-After` seconds.",
    503: "Database unavailable for a moment (`service_unavailable`); retry after `Retry-After` seconds.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Responses in the contract's error shape for ``statuses`` (401, 429 and 503 always apply)."""
    wanted = sorted({401, 429, 503, *statuses})
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in wanted}
