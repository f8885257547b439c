from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Datos Base — Nodos y APs"

    def ready(self) -> None:
        # Registers the Bearer security scheme with drf-spectacular (import side effect).
        from nodes import openapi  # noqa: F401
