from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from portal.errors import DomainError
from tenants.models import Hospital
from tenants.services import hospital_provision


class Command(BaseCommand):
    help = "Create a hospital: its schema, domain, default departments and rules, in one go."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True, help="short id, e.g. binjiang")
        parser.add_argument("--name", required=True, help="Chinese name")
        parser.add_argument("--domain", required=True, help="host name, e.g. binjiang.localhost")
        parser.add_argument("--name-en", default="", help="English name")
        parser.add_argument("--city", default="")
        parser.add_argument("--level", default="", choices=[c for c, _ in Hospital.Level.choices])

    def handle(self, *args, **opts):
        t0 = time.monotonic()
        try:
            hospital = hospital_provision(
                code=opts["code"], name=opts["name"], domain=opts["domain"],
                name_en=opts["name_en"], city=opts["city"], level=opts["level"],
                progress=lambda msg: self.stdout.write(f"  … {msg}"),
            )
        except DomainError as exc:
            raise CommandError(_("%(error)s Nothing was created.") % {"error": exc.message}) from None
        self.stdout.write(self.style.SUCCESS(
            f"Hospital {hospital.code} ({hospital.name}) is ready at "
            f"{hospital.get_primary_domain()} in {time.monotonic() - t0:.2f}s."))
