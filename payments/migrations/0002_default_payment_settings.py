"""Hospitals that existed before payments get the default (sandbox) payment settings."""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    schema = schema_editor.connection.schema_name
    if not schema.startswith("h_"):  # templates and the public schema have no merchant
        return
    PaymentSettings = apps.get_model("payments", "PaymentSettings")
    merchant_id = f"sbx_{schema[2:]}"
    PaymentSettings.objects.get_or_create(pk=1, defaults={
        "provider": "sandbox", "sandbox_merchant_id": merchant_id,
        "sandbox_api_key": _merchant_key(settings.SANDBOX_PAY_MASTER_SECRET, merchant_id)})


def _merchant_key(master_secret, mchid):
    # The sandbox protocol's merchant key as of this migration (a frozen copy: migrations do
    # not import runtime code).
    return hmac.new(master_secret.encode(), mchid.encode(), hashlib.sha256).hexdigest()


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
