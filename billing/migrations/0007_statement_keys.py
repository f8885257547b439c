# Foreign keys of the balance and unit movements reconciliation appends (one per paygo or
# units payment), checked once per statement instead of once per row: see
# paygo.statement_keys. PostgreSQL only; SQLite keeps its foreign keys, and the state
# marks the fields db_constraint=False.

import django.db.models.deletion
from django.db import migrations, models

from paygo.statement_keys import StatementKey, statement_keys_replace


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_ledger_indexes_covered_or_partial"),
        ("sales", "0008_comanda_node_index_covered"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                statement_keys_replace(
                    StatementKey("balmove_customer_key", "billing_balancemovement", "customer_id", "billing_customer"),
                    StatementKey("balmove_payment_key", "billing_balancemovement", "payment_id", "sales_payment"),
                    StatementKey("unitmove_customer_key", "billing_unitmovement", "customer_id", "billing_customer"),
                    StatementKey("unitmove_payment_key", "billing_unitmovement", "payment_id", "sales_payment"),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="balancemovement",
                    name="customer",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="balance_movements",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
                migrations.AlterField(
                    model_name="balancemovement",
                    name="payment",
                    field=models.OneToOneField(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="balance_movement",
                        to="sales.payment",
                        verbose_name="pago",
                    ),
                ),
                migrations.AlterField(
                    model_name="unitmovement",
                    name="customer",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="unit_movements",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
                migrations.AlterField(
                    model_name="unitmovement",
                    name="payment",
                    field=models.OneToOneField(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="unit_movement",
                        to="sales.payment",
                        verbose_name="pago",
                    ),
                ),
            ],
        ),
    ]
