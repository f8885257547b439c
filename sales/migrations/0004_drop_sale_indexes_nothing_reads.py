# Drops three single-column foreign-key indexes of sales_sale that no query reads: sales
# are never looked up by institution or by upload batch, and by resolution only together
# with their number (served by sale_invoice_number_unique). Each was written by every
# sale ingested and again by every reconcile UPDATE. As in 0003 only the indexes go:
# Django's own AlterField would also drop and re-add each foreign key, which re-checks
# every stored row; the constraints stay.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_feed_index_keyset'),
        ('nodes', '0002_roles'),
        ('sales', '0003_drop_indexes_covered_by_composites'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_institution_id_b161f7a0"',
                    reverse_sql='CREATE INDEX "sales_sale_institution_id_b161f7a0" ON "sales_sale" ("institution_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_batch_id_af0a250a"',
                    reverse_sql='CREATE INDEX "sales_sale_batch_id_af0a250a" ON "sales_sale" ("batch_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_invoice_resolution_id_4ebd09b2"',
                    reverse_sql=(
                        'CREATE INDEX "sales_sale_invoice_resolution_id_4ebd09b2" ON "sales_sale" ("invoice_resolution_id")'
                    ),
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='sale',
                    name='batch',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='sales.uploadbatch', verbose_name='lote'),
                ),
                migrations.AlterField(
                    model_name='sale',
                    name='institution',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='nodes.institution', verbose_name='institución'),
                ),
                migrations.AlterField(
                    model_name='sale',
                    name='invoice_resolution',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='billing.invoiceresolution', verbose_name='resolución'),
                ),
            ],
        ),
    ]
