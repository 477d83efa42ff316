"""Every hospital (existing and newly provisioned) starts with the general triage form, the
well-known red flags and rule version 1."""

from django.db import migrations


def seed(apps, schema_editor):
    from consult.defaults import seed as seed_defaults

    seed_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
