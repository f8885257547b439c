"""OpenAPI description of terminal authentication (loaded by ``NodesConfig.ready``)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TerminalKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "nodes.authentication.TerminalKeyAuthentication"
    name = "terminalKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "The terminal's own API key: `Authorization: Bearer <terminal key>`. Created or "
                "rotated in the admin (Datos Base → Nodos y APs), shown once."
            ),
        }
