# Drops single-column foreign-key indexes that a composite index leading with the same
# column already covers (every index is written by each sale a batch inserts). Only the
# indexes go: Django's own AlterField would also drop and re-add each foreign key, which
# re-checks every stored row.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_feed_index_keyset'),
        ('nodes', '0002_roles'),
        ('sales', '0002_invoice_pending_index'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_payment_sale_id_c2196611"',
                    reverse_sql='CREATE INDEX "sales_payment_sale_id_c2196611" ON "sales_payment" ("sale_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_customer_id_2d66a408"',
                    reverse_sql='CREATE INDEX "sales_sale_customer_id_2d66a408" ON "sales_sale" ("customer_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_node_id_812b7db0"',
                    reverse_sql='CREATE INDEX "sales_sale_node_id_812b7db0" ON "sales_sale" ("node_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_sale_terminal_id_a57d03ac"',
                    reverse_sql='CREATE INDEX "sales_sale_terminal_id_a57d03ac" ON "sales_sale" ("terminal_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_saleflag_sale_id_4df961df"',
                    reverse_sql='CREATE INDEX "sales_saleflag_sale_id_4df961df" ON "sales_saleflag" ("sale_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_saleline_sale_id_8f707bda"',
                    reverse_sql='CREATE INDEX "sales_saleline_sale_id_8f707bda" ON "sales_saleline" ("sale_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='payment',
                    name='sale',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='payments', to='sales.sale', verbose_name='venta'),
                ),
                migrations.AlterField(
                    model_name='sale',
                    name='customer',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='billing.customer', verbose_name='cliente'),
                ),
                migrations.AlterField(
                    model_name='sale',
                    name='node',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='nodes.node', verbose_name='nodo'),
                ),
                migrations.AlterField(
                    model_name='sale',
                    name='terminal',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='nodes.terminal', verbose_name='AP'),
                ),
                migrations.AlterField(
                    model_name='saleflag',
                    name='sale',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='flags', to='sales.sale', verbose_name='venta'),
                ),
                migrations.AlterField(
                    model_name='saleline',
                    name='sale',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='sales.sale', verbose_name='venta'),
                ),
            ],
        ),
    ]
