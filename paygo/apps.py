from django.apps import AppConfig


class PaygoConfig(AppConfig):
    name = "paygo"
    verbose_name = "payGO"

    def ready(self) -> None:
        from django.db.models import Field, ForeignObject

        from paygo.array_lookups import AnyOf, RelatedAnyOf
        from paygo.db_adapters import adapters_connect

        Field.register_lookup(AnyOf)
        ForeignObject.register_lookup(RelatedAnyOf)
        adapters_connect()
