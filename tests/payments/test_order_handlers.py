"""What a paid or closed order does is registered by the apps that own the orders, from their
AppConfig.ready(): a worker has it whether or not the admin was ever imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT, subprocess_env

# A fresh interpreter that starts Django as the Celery worker does (portal.celery, then
# django.setup(), then the autodiscovered task modules), with the admin's autodiscovery off
# (SimpleAdminConfig). It reports right after django.setup(), before anything loads the
# URLconf (the worker's start runs Django's checks, which import every view and API module
# and so would hide a handler registered only as a side effect of those), and again once
# the worker's modules are imported.
WORKER_LIKE_START = """
import json, sys
from django.conf import settings
settings.INSTALLED_APPS = ["django.contrib.admin.apps.SimpleAdminConfig"
                           if app == "django.contrib.admin" else app
                           for app in settings.INSTALLED_APPS]
from portal.celery import app
import django

def report():
    from payments import services
    roots = ("portal", "tenants", "payments", "registration", "consult")
    return {"admin_modules": sorted(m for m in sys.modules if m.split(".")[0] in roots
                                    and m.rsplit(".", 1)[-1].endswith("admin")),
            "urlconf_loaded": "portal.urls_hospital" in sys.modules,
            "paid": sorted(services._paid_handlers), "closed": sorted(services._closed_handlers)}

django.setup()
after_setup = report()
app.loader.import_default_modules()
print(json.dumps({"after_setup": after_setup, "worker_started": report()}))
"""


def test_order_handlers_registered_without_the_admin():
    done = subprocess.run([sys.executable, "-c", WORKER_LIKE_START], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = json.loads(done.stdout.strip().splitlines()[-1])
    assert reports["after_setup"]["urlconf_loaded"] is False
    for found in reports.values():
        assert found["admin_modules"] == []
        assert {"registration", "consultation", "clinic_bill"} <= set(found["paid"])
        assert {"consultation", "clinic_bill"} <= set(found["closed"])
