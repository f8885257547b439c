"""Template filters for the report pages: pesos, quantities and Bogotá times."""

from django import template

from paygo.reporting import datetime_text, money_text, quantity_text

register = template.Library()


@register.filter
def money(value):
    return money_text(value)


@register.filter
def qty(value):
    return quantity_text(value)


@register.filter
def bogota(value):
    return datetime_text(value)
