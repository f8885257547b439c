"""Create the "Datos Base" and "Finanzas" groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from nodes.roles import roles_apply


def apply_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_apply(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0001_initial"),
        ("inventory", "0002_initial"),
        ("billing", "0002_initial"),
        ("sales", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(apply_roles, migrations.RunPython.noop)]
