from django.apps import AppConfig


class PaygoConfig(AppConfig):
    name = "paygo"
    verbose_name = "payGO"
