# Drops the comanda's single-column node index: comanda_node_status leads with the node
# and serves every lookup by it. Only the index goes (Django's own AlterField would also
# drop and re-add the foreign key, which re-checks every stored row).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0003_id_composite_unique_targets"),
        ("sales", "0007_unreconciled_index_in_time_of_sale"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sales_comanda_node_id_68003ae7"',
                    reverse_sql='CREATE INDEX "sales_comanda_node_id_68003ae7" ON "sales_comanda" ("node_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="comanda",
                    name="node",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="comandas",
                        to="nodes.node",
                        verbose_name="nodo",
                    ),
                ),
            ],
        ),
    ]
