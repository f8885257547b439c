# Balance and unit movements are written once per reconciled payment, and a customer row
# once per balance change (never a HOT update: change_seq is indexed), with every index of
# the table. Indexes that went: the customer's own index on both movement tables (the
# (customer, …) time indexes lead with it), the institution's own index on customers (the
# unique (institution, code) leads with it), and the full index of ``created_by`` on both
# movement tables, which held one entry (NULL) per sale movement; it becomes a partial
# index of the movements that have an author, which is what deleting a user looks up.
# Unit balances lose the customer's own index too (the unique (customer, unit_type) leads
# with it). Only the indexes change (Django's own AlterField would also drop and re-add the foreign
# keys, which re-checks every stored row).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = [
    ("billing_balancemovement", "billing_balancemovement_customer_id_d8dd2573", "customer_id"),
    ("billing_balancemovement", "billing_balancemovement_created_by_id_0ac31939", "created_by_id"),
    ("billing_unitmovement", "billing_unitmovement_customer_id_a235c889", "customer_id"),
    ("billing_unitmovement", "billing_unitmovement_created_by_id_ad7fe0e8", "created_by_id"),
    ("billing_customer", "billing_customer_institution_id_9faf382a", "institution_id"),
    ("billing_unitbalance", "billing_unitbalance_customer_id_4cc93478", "customer_id"),
]


def _created_by() -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_index=False,
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        to=settings.AUTH_USER_MODEL,
        verbose_name="registrado por",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_customer_feed_head"),
        ("nodes", "0003_id_composite_unique_targets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
                )
                for table, index, column in DROPPED
            ],
            state_operations=[
                migrations.AlterField(model_name="balancemovement", name="created_by", field=_created_by()),
                migrations.AlterField(
                    model_name="balancemovement",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="balance_movements",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="institution",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="customers",
                        to="nodes.institution",
                        verbose_name="institución",
                    ),
                ),
                migrations.AlterField(
                    model_name="unitbalance",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="unit_balances",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
                migrations.AlterField(model_name="unitmovement", name="created_by", field=_created_by()),
                migrations.AlterField(
                    model_name="unitmovement",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="unit_movements",
                        to="billing.customer",
                        verbose_name="cliente",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="balancemovement",
            index=models.Index(
                condition=models.Q(("created_by__isnull", False)), fields=["created_by"], name="balmove_created_by"
            ),
        ),
        migrations.AddIndex(
            model_name="unitmovement",
            index=models.Index(
                condition=models.Q(("created_by__isnull", False)), fields=["created_by"], name="unitmove_created_by"
            ),
        ),
    ]
