"""What a paid or closed order does is registered by the apps that own the orders, from their
AppConfig.ready(): a worker has it whether or not the admin was ever imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, subprocess_env

# A fresh interpreter that starts Django as the Celery worker does (portal.celery, then
# django.setup() and the autodiscovered task modules), with the admin's autodiscovery off
# (SimpleAdminConfig), then reports which project admin modules were imported and which
# order kinds have handlers.
WORKER_LIKE_START = """
import json, sys
from django.conf import settings
settings.INSTALLED_APPS = ["django.contrib.admin.apps.SimpleAdminConfig"
                           if app == "django.contrib.admin" else app
                           for app in settings.INSTALLED_APPS]
from portal.celery import app
import django
django.setup()
app.loader.import_default_modules()
from payments import services
roots = ("portal", "tenants", "payments", "registration", "consult")
admin_modules = sorted(m for m in sys.modules if m.split(".")[0] in roots
                       and m.rsplit(".", 1)[-1].endswith("admin"))
print(json.dumps({"admin_modules": admin_modules, "paid": sorted(services._paid_handlers),
                  "closed": sorted(services._closed_handlers)}))
"""


def test_order_handlers_registered_without_the_admin():
    done = subprocess.run([sys.executable, "-c", WORKER_LIKE_START], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["admin_modules"] == []
    assert {"registration", "consultation", "clinic_bill"} <= set(found["paid"])
    assert {"consultation", "clinic_bill"} <= set(found["closed"])
