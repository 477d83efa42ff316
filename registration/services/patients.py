"""The hospital's patient cards (就诊卡). Run inside the hospital's schema."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from ..models import PatientCard


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
