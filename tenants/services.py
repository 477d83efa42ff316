"""Provisioning hospitals and the platform tenant."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_exists, tenant_context

from portal.errors import DomainError

from .models import Domain, Hospital, validate_hospital_code

log = logging.getLogger(__name__)

RESERVED_CODES = {"platform", "public", "www", "api", "admin", "static", "template"}
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


# What each hospital app puts into a new hospital's schema (default departments, fees, payment
# settings, ...). The apps register here from their AppConfig.ready(), as they register their
# order handlers with payments: tenants sits below them and imports none of them.
HospitalSeeder = Callable[[Hospital], None]
_seeders: dict[str, HospitalSeeder] = {}


def hospital_seeder(name: str) -> Callable[[HospitalSeeder], HospitalSeeder]:
    """Register `fn(hospital)`, run in the new hospital's schema while it is provisioned (in
    registration order; registering a name again replaces it)."""
    def register(fn: HospitalSeeder) -> HospitalSeeder:
        _seeders[name] = fn
        return fn
    return register


def hospital_seed(hospital: Hospital) -> None:
    """Run every registered seeder in the hospital's schema (idempotent seeders only)."""
    with tenant_context(hospital):
        for seed in _seeders.values():
            seed(hospital)


class HospitalCodeTaken(DomainError):
    code = "hospital_code_taken"


class DomainTaken(DomainError):
    code = "domain_taken"


class InvalidHospitalInput(DomainError):
    code = "invalid_input"


def normalize_host(value: str) -> str:
    """'HTTP://Foo.Example.cn:8000/' -> 'foo.example.cn' (ports are not part of a domain)."""
    host = (value or "").strip().lower()
    host = re.sub(r"^[a-z]+://", "", host).split("/")[0].split(":")[0]
    return host[4:] if host.startswith("www.") else host


def schema_name_for(code: str) -> str:
    # A prefix keeps hospital schemas clear of PostgreSQL's own and of the public schema.
    return f"h_{code}"


def hospital_check_available(*, code: str, domain: str) -> tuple[str, str]:
    """Validate a new hospital's code and host; return them normalised or raise."""
    code = (code or "").strip().lower()
    host = normalize_host(domain)
    try:
        validate_hospital_code(code)
    except ValidationError as exc:
        raise InvalidHospitalInput(" ".join(exc.messages), details={"field": "code"}) from None
    if code in RESERVED_CODES:
        raise InvalidHospitalInput(_("The code “%(code)s” is reserved.") % {"code": code},
                                   details={"field": "code"})
    if not _HOST_RE.match(host):
        raise InvalidHospitalInput(_("“%(host)s” is not a valid host name.") % {"host": domain},
                                   details={"field": "domain"})
    if Hospital.objects.filter(code=code).exists() or schema_exists(schema_name_for(code)):
        raise HospitalCodeTaken(
            _("A hospital with the code “%(code)s” already exists.") % {"code": code})
    if Domain.objects.filter(domain=host).exists():
        raise DomainTaken(_("The host “%(host)s” is already in use.") % {"host": host})
    return code, host


def hospital_provision(
    *,
    code: str,
    name: str,
    domain: str,
    name_en: str = "",
    city: str = "",
    level: str = "",
    intro: str = "",
    progress: Callable[[str], None] | None = None,
) -> Hospital:
    """Create a hospital: its schema (all tenant migrations), its domain and default data.

    Either everything is created or nothing is: on any failure the schema and rows made so far
    are removed again. The hospital is marked ready only at the end, so periodic jobs and the
    site ignore it while it is being built.
    """
    say = progress or (lambda msg: None)
    code, host = hospital_check_available(code=code, domain=domain)
    if not (name or "").strip():
        raise InvalidHospitalInput(_("A hospital needs a name."), details={"field": "name"})
    hospital = Hospital(
        schema_name=schema_name_for(code), code=code, name=name.strip(), name_en=name_en.strip(),
        city=city.strip(), level=level, intro=intro,
    )
    try:
        hospital.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise InvalidHospitalInput(" ".join(exc.messages)) from None

    t0 = time.monotonic()
    try:
        say(_("creating schema %(schema)s and running migrations") % {"schema": hospital.schema_name})
        try:
            hospital.save(verbosity=0)  # creates and migrates the schema
        except IntegrityError:
            # Lost a race with a concurrent call for the same code: nothing of ours exists.
            hospital.pk = None
            raise HospitalCodeTaken(
                _("A hospital with the code “%(code)s” already exists.") % {"code": code}
            ) from None
        say(_("adding domain %(host)s") % {"host": host})
        try:
            with transaction.atomic():
                Domain.objects.create(domain=host, tenant=hospital, is_primary=True)
        except IntegrityError:
            raise DomainTaken(_("The host “%(host)s” is already in use.") % {"host": host}) from None
        say(_("adding default departments and rules"))
        hospital_seed(hospital)
        hospital.is_ready = True
        hospital.save(update_fields=["is_ready"])
    except BaseException:
        if hospital.pk is not None:
            log.warning("provisioning %s failed; removing what was created", code)
            connection.set_schema_to_public()
            Domain.objects.filter(tenant_id=hospital.pk).delete()
            hospital.delete(force_drop=True)
        raise
    log.info("provisioned hospital %s in %.2fs", code, time.monotonic() - t0)
    return hospital


def platform_ensure(*, domains: list[str]) -> Hospital:
    """The public tenant (the platform itself) and its host names; idempotent."""
    platform, _created = Hospital.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"code": "platform", "name": "Hospital portal", "name_en": "Hospital portal",
                  "is_ready": True},
    )
    for i, host in enumerate(domains):
        Domain.objects.get_or_create(domain=normalize_host(host),
                                     defaults={"tenant": platform, "is_primary": i == 0})
    return platform
