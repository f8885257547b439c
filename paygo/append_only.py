"""Append-only ledgers: movements are inserted, never updated or deleted.

The ledger is the truth (stock, balances, units); a movement changed in place would
silently break every materialized value computed from it. Corrections are new movements.
"""

from django.db import models


class AppendOnlyError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} es un libro: solo se agregan movimientos.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} es un libro: solo se agregan movimientos.")

    def purge(self):
        """Delete rows for real. Only for resetting demo or test data, never for business."""
        return super().delete()


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} es un libro: un movimiento no se modifica.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} es un libro: un movimiento no se elimina.")
