# Foreign keys of the stock movements reconciliation appends (one per tracked sale line),
# checked once per statement instead of once per row: see paygo.statement_keys.
# PostgreSQL only; SQLite keeps its foreign keys, and the state marks the fields
# db_constraint=False.

import django.db.models.deletion
from django.db import migrations, models

from paygo.statement_keys import StatementKey, statement_keys_replace


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_ledger_indexes_covered_or_partial"),
        ("nodes", "0003_id_composite_unique_targets"),
        ("sales", "0008_comanda_node_index_covered"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                statement_keys_replace(
                    StatementKey("stockmove_node_key", "inventory_stockmovement", "node_id", "nodes_node"),
                    StatementKey("stockmove_product_key", "inventory_stockmovement", "product_id", "inventory_product"),
                    StatementKey(
                        "stockmove_sale_line_key", "inventory_stockmovement", "sale_line_id", "sales_saleline"
                    ),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="stockmovement",
                    name="node",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stock_movements",
                        to="nodes.node",
                        verbose_name="nodo",
                    ),
                ),
                migrations.AlterField(
                    model_name="stockmovement",
                    name="product",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stock_movements",
                        to="inventory.product",
                        verbose_name="producto",
                    ),
                ),
                migrations.AlterField(
                    model_name="stockmovement",
                    name="sale_line",
                    field=models.OneToOneField(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="stock_movement",
                        to="sales.saleline",
                        verbose_name="línea de venta",
                    ),
                ),
            ],
        ),
    ]
