# Sales' institution, node and terminal checked by two composite foreign keys instead of
# three single-column ones (see the comment on Sale.institution):
#
#   (terminal_id, node_id)    -> nodes_terminal (id, node_id)
#   (node_id, institution_id) -> nodes_node (id, institution_id)
#
# Every reference the three constraints enforced is still enforced (a terminal's node
# exists, a node's institution exists), and the sale's terminal must now belong to its
# node and its node to its institution. One row check fewer per inserted sale.
#
# PostgreSQL only (SQLite keeps the constraints it has; Django cannot describe composite
# keys, so the state only marks the three fields db_constraint=False). Adding the keys
# checks every stored sale once; sales whose terminal moved to another node before this
# migration make it fail with the offending ids listed, to be resolved by hand.

import django.db.models.deletion
from django.db import migrations, models

SINGLE_KEYS = {
    "institution_id": ("sales_sale_institution_id_b161f7a0_fk_nodes_institution_id", "nodes_institution"),
    "node_id": ("sales_sale_node_id_812b7db0_fk_nodes_node_id", "nodes_node"),
    "terminal_id": ("sales_sale_terminal_id_a57d03ac_fk_nodes_terminal_id", "nodes_terminal"),
}


def composite_keys_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.terminal_id, s.node_id, s.institution_id, count(*)
            FROM sales_sale s
            LEFT JOIN nodes_terminal t ON t.id = s.terminal_id AND t.node_id = s.node_id
            LEFT JOIN nodes_node n ON n.id = s.node_id AND n.institution_id = s.institution_id
            WHERE t.id IS NULL OR n.id IS NULL
            GROUP BY 1, 2, 3
            """
        )
        mismatched = cursor.fetchall()
    if mismatched:
        raise RuntimeError(
            "Sales whose terminal is not of their node or whose node is not of their institution "
            f"(terminal, node, institution, sales): {mismatched[:20]}"
        )
    # The single-column keys as the database names them (the names above are Django's,
    # looked up rather than assumed).
    drops = []
    with schema_editor.connection.cursor() as cursor:
        for column, (default_name, _table) in SINGLE_KEYS.items():
            drops.extend(_fk_names(cursor, column) or [default_name])
    schema_editor.execute(
        "ALTER TABLE sales_sale "
        + ", ".join(f'DROP CONSTRAINT IF EXISTS "{name}"' for name in drops)
        + ", ADD CONSTRAINT sale_terminal_node_fk FOREIGN KEY (terminal_id, node_id)"
        " REFERENCES nodes_terminal (id, node_id) DEFERRABLE INITIALLY DEFERRED"
        ", ADD CONSTRAINT sale_node_institution_fk FOREIGN KEY (node_id, institution_id)"
        " REFERENCES nodes_node (id, institution_id) DEFERRABLE INITIALLY DEFERRED"
    )


def _fk_names(cursor, column):
    cursor.execute(
        """
        SELECT c.conname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.conrelid = 'sales_sale'::regclass AND c.contype = 'f'
          AND array_length(c.conkey, 1) = 1 AND a.attname = %s
        """,
        [column],
    )
    return [row[0] for row in cursor.fetchall()]


def composite_keys_remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE sales_sale DROP CONSTRAINT IF EXISTS sale_terminal_node_fk"
        ", DROP CONSTRAINT IF EXISTS sale_node_institution_fk, "
        + ", ".join(
            f'ADD CONSTRAINT "{name}" FOREIGN KEY ({column}) REFERENCES {table} (id) DEFERRABLE INITIALLY DEFERRED'
            for column, (name, table) in SINGLE_KEYS.items()
        )
    )


class Migration(migrations.Migration):

    dependencies = [
        ("nodes", "0003_id_composite_unique_targets"),
        ("sales", "0004_drop_sale_indexes_nothing_reads"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(composite_keys_add, composite_keys_remove)],
            state_operations=[
                migrations.AlterField(
                    model_name="sale",
                    name="institution",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sales",
                        to="nodes.institution",
                        verbose_name="institución",
                    ),
                ),
                migrations.AlterField(
                    model_name="sale",
                    name="node",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sales",
                        to="nodes.node",
                        verbose_name="nodo",
                    ),
                ),
                migrations.AlterField(
                    model_name="sale",
                    name="terminal",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sales",
                        to="nodes.terminal",
                        verbose_name="AP",
                    ),
                ),
            ],
        ),
    ]
