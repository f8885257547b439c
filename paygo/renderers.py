"""Fast JSON for the API: orjson renders and parses (batches of 500 sales are hot)."""

from decimal import Decimal

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


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
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON mal formado: {exc}") from exc
