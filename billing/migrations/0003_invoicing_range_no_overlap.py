"""On PostgreSQL, let the database refuse overlapping invoice ranges of one prefix.

``EXCLUDE USING gist (institution_id WITH =, prefix WITH =, int8range(range_from, range_to, '[]') WITH &&)``
needs the ``btree_gist`` extension (trusted since PostgreSQL 13, so a database owner can
create it). Where it cannot be created the migration skips the constraint with a warning
and the service check under the institution row lock (``billing.invoicing.resolution_save``)
remains the guard. Other databases: nothing to do.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

CONSTRAINT = "resolution_range_no_overlap"


def add_exclusion(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("billing", "InvoiceResolution")._meta.db_table)
    try:
        # A savepoint, so a refused CREATE EXTENSION does not abort the migration's transaction.
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
                cursor.execute(
                    f"ALTER TABLE {table} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
                    "(institution_id WITH =, prefix WITH =, int8range(range_from, range_to, '[]') WITH &&)"
                )
    except DatabaseError as exc:
        logger.warning("skipping %s (btree_gist unavailable?): %s", CONSTRAINT, exc)


def drop_exclusion(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("billing", "InvoiceResolution")._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_initial"),
    ]

    operations = [
        migrations.RunPython(add_exclusion, drop_exclusion),
    ]
