"""Hospitals that existed before payments get the default (sandbox) payment settings."""

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    schema = schema_editor.connection.schema_name
    if not schema.startswith("h_"):  # templates and the public schema have no merchant
        return
    from payments.sandbox.server import merchant_key

    PaymentSettings = apps.get_model("payments", "PaymentSettings")
    merchant_id = f"sbx_{schema[2:]}"
    PaymentSettings.objects.get_or_create(pk=1, defaults={
        "provider": "sandbox", "sandbox_merchant_id": merchant_id,
        "sandbox_api_key": merchant_key(settings.SANDBOX_PAY_MASTER_SECRET, merchant_id)})


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
