"""One error type for the application and one renderer for every API error.

Services raise :class:`ApplicationError` (or a subclass) with a stable ``code``; the API
exception handler renders it, and every DRF or Django error, in the contract's shape::

    {"error": {"code": "...", "message": "...", "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
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


class RequestTooLarge(ApplicationError):
    """The request body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``; nothing was read or stored."""

    code = "request_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_message = "La solicitud es demasiado grande."


def request_too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"La solicitud supera el máximo de {limit} bytes; envíe lotes más pequeños."


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
    if isinstance(exc, RequestDataTooBig):
        # Raised by Django when something reads ``request.body`` past the upload limit.
        exc = RequestTooLarge(request_too_large_message())
        return Response(error_body(exc.code, exc.message), status=exc.status_code)
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


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Catch-all for unknown paths under ``/api/``: a 404 in the contract shape.

    CSRF-exempt like every API view (terminals authenticate with a key, not a cookie):
    otherwise a POST to an unknown API path got Django's HTML "CSRF verification failed" 403.

    Routed explicitly (last in ``paygo.api_urls``) rather than left to ``handler404``, so the
    answer is the same with ``DEBUG`` on, and ``APPEND_SLASH`` never redirects an API POST.
    """
    return JsonResponse(error_body("not_found", "No existe ese recurso de la API."), status=404)


# Django-level handlers (errors raised before or outside a DRF view): the contract shape under
# /api/, Django's own pages for the admin and everything else people read in a browser.


def handler400(request, exception=None):
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body(RequestTooLarge.code, request_too_large_message()), status=413)
    return JsonResponse(error_body("bad_request", "Solicitud inválida."), status=400)


def handler403(request, exception=None):
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("permission_denied", "No tiene permiso para esta operación."), status=403)


def handler404(request, exception=None):
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", "No encontrado."), status=404)


def handler500(request):
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse(error_body("server_error", "Error interno; reintente la solicitud."), status=500)
