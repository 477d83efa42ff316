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


def patient_card_for(*, family_member) -> PatientCard:
    """This hospital's card for a family member, created on first use."""
    card = PatientCard.objects.filter(family_member=family_member).first()
    return card if card is not None else patient_card_create(family_member=family_member)


def patient_card_create(*, family_member) -> PatientCard:
    """A new card with the next record number; the existing one if the member has one.

    On the booking path, so one statement: the number comes from a per-hospital sequence
    (created by migration 0003; DDL here raced with concurrent first bookings), e.g.
    2026000123, and ON CONFLICT DO NOTHING settles a concurrent first booking of the same
    member without an IntegrityError, hence without a savepoint (the loser reads the winner's
    card). The member's row is locked FOR KEY SHARE now rather than by the deferred foreign
    key at commit: a concurrent change of the member's name or ID number (which holds the row
    FOR UPDATE and refuses once a card exists) then either waits for this card or goes first.
    """
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO registration_patientcard (family_member_id, medical_record_number,
                                                  created_at)
            SELECT m.id, %s || CASE WHEN seq.n < 1000000 THEN lpad(seq.n::text, 6, '0')
                                    ELSE seq.n::text END, %s
            FROM (SELECT id FROM accounts_familymember WHERE id = %s FOR KEY SHARE) AS m,
                 (SELECT nextval('patient_card_mrn_seq') AS n) AS seq
            ON CONFLICT (family_member_id) DO NOTHING
            RETURNING id, medical_record_number""", [f"{now:%Y}", now, family_member.pk])
        row = cur.fetchone()
    if row is None:  # created concurrently by another request
        return PatientCard.objects.get(family_member=family_member)
    card = PatientCard(pk=row[0], family_member=family_member, medical_record_number=row[1],
                       created_at=now)
    card._state.adding, card._state.db = False, connection.alias
    return card


def booking_create_for_partner(*, partner, slice_id: int, name: str, id_number: str,
                               mobile: str):
    """A booking made through the partner API: find or create the patient's platform account
    and family member, take the place through `booking_hold` (every registration rule
    applies, source "api"), and remember which partner made it, all in one transaction."""
    from django.db import connection

    from portal.partners.models import PartnerRecord
    from portal.partners.services import patient_resolve, record_object

    from .booking import booking_hold

    with transaction.atomic():
        account, member = patient_resolve(name=name, id_number=id_number, mobile=mobile)
        booking = booking_hold(slice_id=slice_id, family_member=member, account=account,
                               source="api")
        record_object(partner=partner, hospital=connection.tenant,
                      kind=PartnerRecord.Kind.BOOKING, object_id=booking.pk)
    return booking
