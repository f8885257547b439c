# Foreign keys of the rows a batch inserts (its sales' customer, batch, terminal, node and
# institution, their lines' sale and product, payments' sale) and of the flags, checked
# once per statement instead of once per row: see paygo.statement_keys. PostgreSQL only; SQLite keeps its foreign
# keys, and the state marks the fields db_constraint=False.

import django.db.models.deletion
from django.db import migrations, models

from paygo.statement_keys import StatementKey, statement_keys_replace


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_statement_keys"),
        ("inventory", "0004_statement_keys"),
        ("sales", "0008_comanda_node_index_covered"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                statement_keys_replace(
                    StatementKey("saleline_sale_key", "sales_saleline", "sale_id", "sales_sale"),
                    StatementKey("saleline_product_key", "sales_saleline", "product_id", "inventory_product"),
                    StatementKey("payment_sale_key", "sales_payment", "sale_id", "sales_sale"),
                    StatementKey("saleflag_sale_key", "sales_saleflag", "sale_id", "sales_sale"),
                    StatementKey("sale_customer_key", "sales_sale", "customer_id", "billing_customer"),
                    StatementKey("sale_batch_key", "sales_sale", "batch_id", "sales_uploadbatch"),
                    # The composite keys of migration 0005, under the same names.
                    StatementKey(
                        "sale_terminal_node_fk",
                        "sales_sale",
                        ("terminal_id", "node_id"),
                        "nodes_terminal",
                        ("id", "node_id"),
                    ),
                    StatementKey(
                        "sale_node_institution_fk",
                        "sales_sale",
                        ("node_id", "institution_id"),
                        "nodes_node",
                        ("id", "institution_id"),
                    ),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="payment",
                    name="sale",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="payments",
                        to="sales.sale",
                        verbose_name="venta",
                    ),
                ),
                migrations.AlterField(
                    model_name="sale",
                    name="batch",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sales",
                        to="sales.uploadbatch",
                        verbose_name="lote",
                    ),
                ),
                migrations.AlterField(
                    model_name="sale",
                    name="customer",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sales",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
                migrations.AlterField(
                    model_name="saleflag",
                    name="sale",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="flags",
                        to="sales.sale",
                        verbose_name="venta",
                    ),
                ),
                migrations.AlterField(
                    model_name="saleline",
                    name="product",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sale_lines",
                        to="inventory.product",
                        verbose_name="producto",
                    ),
                ),
                migrations.AlterField(
                    model_name="saleline",
                    name="sale",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lines",
                        to="sales.sale",
                        verbose_name="venta",
                    ),
                ),
            ],
        ),
    ]
