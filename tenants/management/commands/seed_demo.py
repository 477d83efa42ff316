from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts.models import User
from portal.accounts.services import family_member_add, staff_grant
from tenants import demo
from tenants.models import Hospital
from tenants.services import hospital_provision, platform_ensure


class Command(BaseCommand):
    help = "Create the platform, two demo hospitals, their admins and a demo patient (idempotent)."

    def handle(self, *args, **opts):
        platform_ensure(domains=demo.PLATFORM_DOMAINS)
        self._account(demo.OPERATOR, is_staff=True, is_superuser=True)
        for spec in demo.HOSPITALS:
            hospital = Hospital.objects.filter(code=spec["code"]).first()
            if hospital is None:
                self.stdout.write(f"  creating {spec['code']} ({spec['name']})")
                hospital = hospital_provision(
                    code=spec["code"], name=spec["name"], name_en=spec["name_en"],
                    city=spec["city"], level=spec["level"], domain=spec["domain"],
                    intro=spec["intro"])
                Hospital.objects.filter(pk=hospital.pk).update(
                    intro_en=spec["intro_en"], address=spec["address"], phone=spec["phone"])
            admin = self._account(spec["admin"])
            staff_grant(user=admin, hospital=hospital, role="admin")
        patient = self._account(demo.PATIENT)
        with transaction.atomic():
            for member in demo.PATIENT["family"]:
                if not patient.family_members.filter(id_number=member["id_number"]).exists():
                    family_member_add(account=patient, **member)
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))

    def _account(self, spec: dict, **flags) -> User:
        user = User.objects.filter(phone=spec["phone"]).first()
        if user is None:
            user = User.objects.create_user(phone=spec["phone"], password=spec["password"],
                                            name=spec["name"], **flags)
        return user
