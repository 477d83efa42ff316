from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants import demo


class Command(BaseCommand):
    help = "Print the URLs and demo logins of a local `make run`."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **opts):
        port = opts["port"]
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("Hospital portal is running"))
        w(f"  Platform            http://localhost:{port}/")
        w(f"  Platform admin      http://localhost:{port}/admin/   "
          f"{demo.OPERATOR['phone']} / {demo.OPERATOR['password']}")
        for h in demo.HOSPITALS:
            w(f"  {h['name']}  http://{h['domain']}:{port}/")
            w(f"    hospital admin    http://{h['domain']}:{port}/admin/   "
              f"{h['admin']['phone']} / {h['admin']['password']}")
        w(f"  Demo patient        {demo.PATIENT['phone']} / {demo.PATIENT['password']}")
        doc = demo.CONSULT_DOCTOR["account"]
        w(f"  Demo doctor         http://{demo.HOSPITALS[0]['domain']}:{port}/workbench/   "
          f"{doc['phone']} / {doc['password']}")
        w(f"  Health              http://localhost:{port}/health/")
        w(f"  Partner API docs    http://localhost:{port}/api/docs/   demo key "
          f"{demo.PARTNER['key']}")
        sandbox = settings.SANDBOX_PAY_URL.rstrip("/").replace("127.0.0.1", "localhost")
        w(f"  Sandbox payments    {sandbox}/  (cashier pages open from the site)")
        sms = settings.SMS_GATEWAY_URL or "http://127.0.0.1:8002"
        w(f"  Fake SMS gateway    {sms.rstrip('/')}/v1/messages  (every SMS sent)")
        if settings.MESSAGING_APP_URL:
            w(f"  Fake messaging app  {settings.MESSAGING_APP_URL.rstrip('/')}/  (template "
              "messages sent; bind at /inbox/preferences/)")
        w("")
