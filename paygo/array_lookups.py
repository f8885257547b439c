"""``field__any=[...]``: membership in a list of values sent as ONE array parameter.

``field__in=[...]`` binds one placeholder per value: with a batch's 500 sale ids or 400
customer codes, Django prepares each value and psycopg then splits and binds a query
with hundreds of placeholders, a visible share of a batch's CPU. On PostgreSQL this
lookup writes ``field = ANY(%s::type[])`` with the values as one array literal
(:func:`paygo.bulk_insert.array_param`); elsewhere (SQLite) it is exactly ``__in``.
Registered for every field and every foreign key (whose lookups Django keeps apart) by
:class:`paygo.apps.PaygoConfig`.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models.expressions import ColPairs
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In

from paygo.bulk_insert import array_param, values_plain


class _AnyArray:
    lookup_name = "any"

    def get_prep_lookup(self):
        # A list of plain ids (the usual case) is already what Django's preparation of each
        # value, one call per value (twice for a foreign key), would return.
        if (
            isinstance(self.rhs, (list, tuple))
            and not isinstance(self.lhs, ColPairs)
            and values_plain(self.lhs.output_field, self.rhs)
        ):
            return list(self.rhs)
        return super().get_prep_lookup()

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        values = [value for value in dict.fromkeys(self.rhs) if value is not None]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        # Without a type modifier: a cast to varchar(64) would silently cut a longer value
        # and let it match a stored one equal to its first 64 characters.
        db_type = self.lhs.output_field.cast_db_type(connection).split("(", 1)[0]
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, array_param(values))


class AnyOf(_AnyArray, In):
    pass


class RelatedAnyOf(_AnyArray, RelatedIn):
    pass
