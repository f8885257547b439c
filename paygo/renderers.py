"""Fast JSON for the API: orjson renders and parses (batches of 500 sales are hot)."""

from decimal import Decimal

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from paygo.errors import RequestTooLarge, request_too_large_message


def _default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


class ORJSONParser(BaseParser):
    """Parses JSON with orjson; numbers stay exact where the contract wants strings.

    orjson refuses NaN and Infinity, and reports malformed or too deeply nested input as
    a parse error, which the error handler turns into ``400 malformed_json``.

    DRF hands parsers the raw request stream, which bypasses Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check on ``request.body``; the limit is enforced here
    instead (declared length first, then the bytes actually read) as ``413 request_too_large``.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None:
            body = stream.read()
        else:
            request = (parser_context or {}).get("request")
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
            except ValueError:
                declared = 0
            if declared > limit:
                raise RequestTooLarge(request_too_large_message())
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise RequestTooLarge(request_too_large_message())
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON mal formado: {exc}") from exc
