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


# The same start, then what a worker does when a payment reaches it: apply the provider's paid
# notice in the hospital's schema. Nothing has loaded the admin or the URLconf, so the booking
# is confirmed only if registration registered its handler from its own ready().
WORKER_LIKE_PAYMENT = """
import json, sys
from django.conf import settings
settings.INSTALLED_APPS = ["django.contrib.admin.apps.SimpleAdminConfig"
                           if app == "django.contrib.admin" else app
                           for app in settings.INSTALLED_APPS]
from portal.celery import app
import django
django.setup()
from django.db import connection
from payments import services
from payments.providers.base import Notice
from registration.models import Booking
from tenants.models import Hospital

booking_id, schema = int(sys.argv[1]), sys.argv[2]
connection.set_tenant(Hospital.objects.get(schema_name=schema))
booking = Booking.objects.select_related("order").get(pk=booking_id)
outcome = services.notice_apply(provider="sandbox", notice=Notice(
    notification_id=f"worker-{booking_id}", kind="payment", out_trade_no=booking.order.out_trade_no,
    status="paid", amount_fen=booking.order.self_pay_fen, currency="CNY",
    provider_txn_id=f"TW{booking_id}"))
booking.refresh_from_db()
roots = ("portal", "tenants", "payments", "registration", "consult")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots
                and (".admin" in m or m.startswith("portal.urls")))
print(json.dumps({"outcome": outcome, "status": booking.status, "loaded": loaded}))
"""


def test_order_handlers_worker_process_without_the_admin_confirms_a_paid_booking(
        committed_hospital_a):
    from registration.models import Booking
    from registration.services import booking as booking_services
    from tests.helpers import in_schema
    from tests.registration.helpers import make_patient, make_session

    user, member = make_patient()
    with in_schema(committed_hospital_a):
        _, schedule = make_session(name="无后台医生")
        first = schedule.slices.order_by("start").first()
        held = booking_services.booking_hold(slice_id=first.pk, family_member=member, account=user)
    assert held.status == Booking.Status.HELD
    done = subprocess.run([sys.executable, "-c", WORKER_LIKE_PAYMENT, str(held.pk),
                           committed_hospital_a.schema_name], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["status"] == Booking.Status.CONFIRMED
    with in_schema(committed_hospital_a):
        assert Booking.objects.get(pk=held.pk).status == Booking.Status.CONFIRMED
