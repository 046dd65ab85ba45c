"""The partner-survey role: the only group that may see partner contacts (see
recruitment.services.access_partner_contacts and decision 0072)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Permissions are normally created after all migrations; this one needs them now.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="partner_survey")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="recruitment", codename="view_partnercontact"
        )
    )


def remove_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.filter(name="partner_survey").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recruitment", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
