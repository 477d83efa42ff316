"""What every new hospital starts with (staff edit it in admin). Idempotent: run again, it
only adds what is missing."""

from __future__ import annotations

from django.db import transaction

from ..defaults import DEFAULT_DEPARTMENTS
from ..models import Department, TitleFee
from .rules import DEFAULT_TITLE_FEES


@transaction.atomic
def title_fees_seed_defaults() -> None:
    for title, fee in DEFAULT_TITLE_FEES.items():
        TitleFee.objects.get_or_create(title=title, defaults={"fee_fen": fee})


@transaction.atomic
def departments_seed_defaults() -> int:
    """Create the default department tree where it is missing; return how many were created."""
    created = 0
    order = 0
    for code, name, name_en, children in DEFAULT_DEPARTMENTS:
        order += 10
        parent, made = Department.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en, "sort_order": order})
        created += made
        for i, (child_code, child_name, child_en) in enumerate(children, start=1):
            _, made = Department.objects.get_or_create(
                code=child_code,
                defaults={"name": child_name, "name_en": child_en, "parent": parent,
                          "sort_order": i * 10})
            created += made
    return created


def hospital_seed_defaults(hospital) -> None:
    """A new hospital's registration defaults (registered with tenants' provisioning)."""
    departments_seed_defaults()
    title_fees_seed_defaults()
