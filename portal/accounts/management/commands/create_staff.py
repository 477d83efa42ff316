from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.accounts.models import StaffMembership, User
from portal.accounts.services import staff_grant
from portal.accounts.validators import mask_mobile, normalize_mobile, validate_mobile
from portal.errors import DomainError
from tenants.models import Hospital


class Command(BaseCommand):
    help = ("Make an account staff of a hospital with a role. The account is created with the "
            "given password if the number has none yet; an existing account keeps its password.")

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="hospital code")
        parser.add_argument("--phone", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", required=True, choices=StaffMembership.Role.values)
        parser.add_argument("--name", default="")

    def handle(self, *args, **opts):
        hospital = Hospital.objects.filter(code=opts["hospital"].lower()).exclude(
            schema_name="public").first()
        if hospital is None:
            raise CommandError(f"No hospital with code “{opts['hospital']}”.")
        phone = normalize_mobile(opts["phone"])
        try:
            validate_mobile(phone)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        user = User.objects.filter(phone=phone).first()
        if user is None:
            user = User.objects.create_user(phone=phone, password=opts["password"],
                                            name=opts["name"])
            self.stdout.write(f"Created account {mask_mobile(phone)}.")
        else:
            self.stdout.write(f"Account {mask_mobile(phone)} exists; its password is unchanged.")
        try:
            membership = staff_grant(user=user, hospital=hospital, role=opts["role"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(
            f"{mask_mobile(phone)} is now {membership.get_role_display()} at {hospital.code}."))
