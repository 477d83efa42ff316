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
        self._demo_bill(patient)
        for spec in demo.HOSPITALS:
            self._demo_doctors(Hospital.objects.get(code=spec["code"]))
        self._demo_consult(patient)
        self._demo_partner()
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))

    def _demo_partner(self) -> None:
        from portal.partners.models import ApiKey, Partner, Scope
        from portal.partners.services import api_key_create, grant_create, parse_key

        partner, _created = Partner.objects.get_or_create(name=demo.PARTNER["name"])
        for spec in demo.HOSPITALS:
            grant_create(partner=partner, hospital=Hospital.objects.get(code=spec["code"]))
        prefix = parse_key(demo.PARTNER["key"])[0]
        if not ApiKey.objects.filter(prefix=prefix).exists():
            api_key_create(partner=partner, scopes=list(Scope.values), name="demo",
                           raw=demo.PARTNER["key"])

    def _demo_bill(self, patient: User) -> None:
        """An unpaid clinic bill for the demo patient at the first hospital, to try paying."""
        from django_tenants.utils import tenant_context

        from registration.models import ClinicBill, Department
        from registration.services.bills import clinic_bill_open, clinic_bill_set_items
        from registration.services.patients import patient_card_for

        hospital = Hospital.objects.get(code=demo.HOSPITALS[0]["code"])
        with tenant_context(hospital):
            cards = [patient_card_for(family_member=m) for m in patient.family_members.all()]
            if not cards or ClinicBill.objects.filter(patient_card__in=cards).exists():
                return
            bill = clinic_bill_open(patient_card=cards[0], doctor_name="李医生",
                                    department=Department.objects.filter(code="cardiology").first())
            clinic_bill_set_items(bill=bill, items=demo.CLINIC_BILL_ITEMS)
            self.stdout.write(f"  demo clinic bill {bill.bill_no} at {hospital.code}")

    def _demo_doctors(self, hospital: Hospital) -> None:
        """Fictional doctors with weekly sessions, and their schedules for the next two weeks.

        Idempotent: doctors and templates are matched by name and weekday/period, and
        `schedules_generate` skips schedules that exist, so a second run creates nothing.
        """
        from datetime import time

        from django_tenants.utils import tenant_context

        from registration.models import Department, Doctor, ScheduleTemplate
        from registration.services.schedules import schedules_generate

        with tenant_context(hospital):
            for code, location in demo.DEPARTMENT_LOCATIONS.items():
                Department.objects.filter(code=code, location="").update(location=location)
            doctors = []
            for order, spec in enumerate(demo.DOCTORS.get(hospital.code, []), start=1):
                department = Department.objects.filter(code=spec["department"]).first()
                if department is None:  # staff removed the department: leave it so
                    continue
                doctor = Doctor.objects.filter(department=department, name=spec["name"]).first()
                if doctor is None:
                    doctor = Doctor.objects.create(
                        department=department, name=spec["name"], name_en=spec["name_en"],
                        title=spec["title"], specialties=spec["specialties"],
                        intro=spec["intro"], sort_order=order * 10)
                    self.stdout.write(f"  doctor {doctor.name} at {hospital.code}")
                doctors.append(doctor)
                for weekday, period, start, end, minutes, capacity in spec["sessions"]:
                    ScheduleTemplate.objects.get_or_create(
                        doctor=doctor, weekday=weekday, period=period,
                        defaults={"start_time": time.fromisoformat(start),
                                  "end_time": time.fromisoformat(end),
                                  "slice_minutes": minutes, "capacity_per_slice": capacity})
            created = schedules_generate(
                weeks=2, templates=ScheduleTemplate.objects.filter(doctor__in=doctors))
            if created:
                self.stdout.write(f"  {len(created)} clinic sessions at {hospital.code}")

    def _demo_consult(self, patient: User) -> None:
        """An online doctor (with a workbench login) and a lab report with abnormal values at
        the first hospital. Idempotent: matched by account, doctor and the report's id."""
        from django_tenants.utils import tenant_context

        from consult.models import DoctorConsultProfile
        from consult.services.records import report_create
        from registration.models import Department, Doctor

        hospital = Hospital.objects.get(code=demo.HOSPITALS[0]["code"])
        spec = demo.CONSULT_DOCTOR
        account = self._account(spec["account"])
        staff_grant(user=account, hospital=hospital, role="doctor")
        with tenant_context(hospital):
            doctor = Doctor.objects.filter(name=spec["doctor"]).first()
            if doctor is not None:
                if doctor.account_id is None:
                    Doctor.objects.filter(pk=doctor.pk).update(account=account)
                DoctorConsultProfile.objects.get_or_create(doctor=doctor,
                                                           defaults={"fee_fen": spec["fee_fen"]})
            member = patient.family_members.filter(relation="self").first()
            report = demo.LAB_REPORT
            if member is not None:
                report_create(kind="lab_report", title=report["title"], family_member=member,
                              items=report["items"], doctor_name=report["doctor_name"],
                              department=Department.objects.filter(
                                  code=report["department"]).first(),
                              source="demo", external_id=report["external_id"])

    def _account(self, spec: dict, **flags) -> User:
        user = User.objects.filter(phone=spec["phone"]).first()
        if user is None:
            user = User.objects.create_user(phone=spec["phone"], password=spec["password"],
                                            name=spec["name"], **flags)
        return user
