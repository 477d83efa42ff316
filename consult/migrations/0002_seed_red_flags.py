"""Every hospital (existing and newly provisioned) starts with the general triage form, the
well-known red flags and rule version 1."""

from django.db import migrations


def seed(apps, schema_editor):
    from consult.defaults import seed as seed_defaults

    seed_defaults(apps)
    # Check the seeded rows' foreign keys now rather than at commit: when provisioning runs
    # inside an outer transaction and fails, the schema is dropped in that same transaction,
    # and PostgreSQL refuses to drop tables with pending deferred checks.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("consult", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop, elidable=True),
    ]
