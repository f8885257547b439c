"""One error type for the application and one renderer for every API error.

Services raise :class:`ApplicationError` (or a subclass) with a stable ``code``; the API
exception handler renders it, and every DRF or Django error, in the contract's shape::

    {"error": {"code": "...", "message": "...", "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A failure the client can understand, with a stable machine-readable code."""

    code = "error"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = "La solicitud no se pudo procesar."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}
        super().__init__(self.message)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# DRF exception class -> (stable code, Spanish message when DRF's own is not helpful)
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.ParseError, "malformed_json"),
    (exceptions.ValidationError, "invalid_request"),
]


def _drf_code(exc: exceptions.APIException) -> str:
    for klass, code in _DRF_CODES:
        if isinstance(exc, klass):
            return code
    return "error"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every API failure in the contract's error shape, never as a bare 500."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No encontrado.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied("No tiene permiso para esta operación.")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable or restarting: the client should retry later.
        logger.warning("database unavailable while serving the API", exc_info=exc)
        return Response(
            error_body("service_unavailable", "Base de datos no disponible; reintente en unos segundos."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    elif isinstance(exc, DatabaseError):
        logger.exception("database error while serving the API", exc_info=exc)
        return Response(
            error_body("server_error", "Error interno; reintente la solicitud."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait) + 1)
        details: dict[str, Any] = {}
        if isinstance(exc, exceptions.ValidationError):
            details = {"fields": exc.detail}
            message = "La solicitud tiene campos inválidos."
        elif isinstance(exc, exceptions.Throttled):
            message = "Demasiadas solicitudes; reintente más tarde."
            if exc.wait:
                details = {"retry_after_seconds": int(exc.wait) + 1}
        else:
            message = str(exc.detail)
        return Response(error_body(_drf_code(exc), message, details), status=exc.status_code, headers=headers)

    logger.exception("unhandled error in the API", exc_info=exc)
    return Response(
        error_body("server_error", "Error interno; reintente la solicitud."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_error_view(status_code: int, code: str, message: str):
    """Build a Django view rendering an error in the contract shape (404/500 outside DRF)."""

    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view
