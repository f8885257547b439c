# sale.institution and sale.node lose their database constraints (see Sale): both are
# copied from the sale's terminal, whose keys are checked, and were re-checked once per
# sale at every batch's commit. Their indexes stay.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0002_roles'),
        ('sales', '0003_drop_indexes_covered_by_composites'),
    ]

    operations = [
        migrations.AlterField(
            model_name='sale',
            name='institution',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='nodes.institution', verbose_name='institución'),
        ),
        migrations.AlterField(
            model_name='sale',
            name='node',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sales', to='nodes.node', verbose_name='nodo'),
        ),
    ]
