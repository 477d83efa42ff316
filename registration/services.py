"""State changes of the registration app. Run inside the hospital's schema."""

from __future__ import annotations

from django.db import transaction

from .defaults import DEFAULT_DEPARTMENTS
from .models import Department, PatientCard


@transaction.atomic
def title_fees_seed_defaults() -> None:
    from .booking import DEFAULT_TITLE_FEES
    from .models import TitleFee

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


def _next_record_number() -> str:
    # A per-hospital sequence keeps numbers short and readable (e.g. 2026000123) without a race.
    from django.db import connection

    # The sequence is created by migration 0003 (DDL here raced with concurrent first bookings).
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('patient_card_mrn_seq')")
        (n,) = cur.fetchone()
    from django.utils import timezone

    return f"{timezone.now():%Y}{n:06d}"


def patient_card_for(*, family_member) -> PatientCard:
    """This hospital's card for a family member, created on first use.

    On the booking path, so it stays cheap: one SELECT for a returning patient; for a new one
    the INSERT ... ON CONFLICT DO NOTHING settles a concurrent first booking of the same member
    without an IntegrityError, hence without savepoints (the loser reads the winner's card).
    """
    from django.db import connection
    from django.utils import timezone

    card = PatientCard.objects.filter(family_member=family_member).first()
    if card is not None:
        return card
    number, now = _next_record_number(), timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO registration_patientcard (family_member_id, medical_record_number, "
            "created_at) VALUES (%s, %s, %s) ON CONFLICT (family_member_id) DO NOTHING "
            "RETURNING id", [family_member.pk, number, now])
        row = cur.fetchone()
    if row is None:  # created concurrently by another request
        return PatientCard.objects.get(family_member=family_member)
    card = PatientCard(pk=row[0], family_member=family_member, medical_record_number=number,
                       created_at=now)
    card._state.adding, card._state.db = False, connection.alias
    return card
