# Stock movements are written once per reconciled sale line, with every index of the
# table. Two of them went: the node's own index (stockmove_node_prod_time leads with the
# node and serves every lookup by it), and the full index of ``created_by``, which held
# one entry (NULL) per sale movement; it becomes a partial index of the movements that
# have an author, which is what deleting a user looks up. Node stock loses the node's own
# index too (the unique (node, product) leads with it). Only the indexes change
# (Django's own AlterField would also drop and re-add the foreign keys, which re-checks
# every stored row).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_initial"),
        ("nodes", "0003_id_composite_unique_targets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "inventory_stockmovement_node_id_86f146ea"',
                    reverse_sql='CREATE INDEX "inventory_stockmovement_node_id_86f146ea" '
                    'ON "inventory_stockmovement" ("node_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "inventory_stockmovement_created_by_id_9a39cb99"',
                    reverse_sql='CREATE INDEX "inventory_stockmovement_created_by_id_9a39cb99" '
                    'ON "inventory_stockmovement" ("created_by_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "inventory_nodestock_node_id_40ba89e8"',
                    reverse_sql='CREATE INDEX "inventory_nodestock_node_id_40ba89e8" ON "inventory_nodestock" ("node_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="nodestock",
                    name="node",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stock",
                        to="nodes.node",
                        verbose_name="nodo",
                    ),
                ),
                migrations.AlterField(
                    model_name="stockmovement",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="registrado por",
                    ),
                ),
                migrations.AlterField(
                    model_name="stockmovement",
                    name="node",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stock_movements",
                        to="nodes.node",
                        verbose_name="nodo",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="stockmovement",
            index=models.Index(
                condition=models.Q(("created_by__isnull", False)), fields=["created_by"], name="stockmove_created_by"
            ),
        ),
    ]
