"""Records and reports: staff and partners write them, patients read them, and every read of
one goes through `record_access`, the one gate, which logs it."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import StaffMembership
from registration.models import PatientCard
from registration.services.patients import patient_card_for

from ..errors import InvalidReport, RecordNotFound
from ..models import LabItem, Record, RecordAccess
from .notices import patient_notify

_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[-–~]\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?|≤|≥)\s*(-?\d+(?:\.\d+)?)\s*$")


def lab_flag(value: str, reference_range: str) -> str:
    """H / L from a numeric value and a numeric range ('3.5-5.5', '<5.2', '>=1.0'); '' when
    it is inside or cannot be worked out (staff then set the flag themselves)."""
    try:
        v = Decimal(str(value).strip())
    except InvalidOperation:
        return ""
    m = _RANGE.match(reference_range or "")
    if m:
        lo, hi = Decimal(m.group(1)), Decimal(m.group(2))
        return "L" if v < lo else "H" if v > hi else ""
    m = _BOUND.match(reference_range or "")
    if m:
        op, bound = m.group(1), Decimal(m.group(2))
        if op in ("<", "<=", "≤"):
            return "H" if (v >= bound if op == "<" else v > bound) else ""
        return "L" if (v <= bound if op == ">" else v < bound) else ""
    return ""


def _clean_item(item: dict, order: int) -> LabItem:
    name, value = str(item.get("name") or "").strip(), str(item.get("value") or "").strip()
    if not name or not value:
        raise InvalidReport(_("Every lab item needs a name and a value."))
    flag = str(item.get("flag") or "").strip().upper()
    if flag not in LabItem.Flag.values:
        raise InvalidReport(_("A lab item's flag is H, L, A or empty."))
    reference = str(item.get("reference_range") or "").strip()
    return LabItem(name=name[:100], code=str(item.get("code") or "")[:30], value=value[:50],
                   unit=str(item.get("unit") or "")[:30], reference_range=reference[:50],
                   flag=flag or lab_flag(value, reference),
                   sort_order=item.get("sort_order", order * 10))


def report_create(*, kind: str, title: str, patient_card=None, family_member=None,
                  medical_record_number: str | None = None, items: list[dict] | tuple = (),
                  body: str = "", conclusion: str = "",
                  department=None, doctor_name: str = "", issued_at: datetime | None = None,
                  by=None, source: str = "staff", external_id: str | None = None) -> Record:
    """Create a record or report for a patient of this hospital and tell the patient.

    For staff (admin) and partners (the API's `reports:write` scope). The patient is a
    `patient_card`, a `family_member` (a card is made on first use) or this hospital's
    `medical_record_number` (what a partner's HIS knows). `items` are lab results:
    {"name", "value", "unit", "reference_range", "flag" (H/L/A or empty: worked out), "code"}.
    Idempotent on `external_id`: the same id again returns the first record unchanged.
    """
    if kind not in Record.Kind.values:
        raise InvalidReport(_("Unknown record kind."))
    if not (title or "").strip():
        raise InvalidReport(_("A record needs a title."))
    if items and kind != Record.Kind.LAB_REPORT:
        raise InvalidReport(_("Only lab reports have result items."))
    with transaction.atomic():
        if external_id:
            existing = Record.objects.filter(external_id=external_id).first()
            if existing is not None:
                return existing
        if patient_card is None and medical_record_number:
            patient_card = PatientCard.objects.filter(
                medical_record_number=str(medical_record_number).strip()).first()
            if patient_card is None:
                raise InvalidReport(_("No patient card has this number."),
                                    code="unknown_patient")
        if patient_card is None:
            if family_member is None:
                raise InvalidReport(_("Name the patient (card or family member)."))
            patient_card = patient_card_for(family_member=family_member)
        lab_items = [_clean_item(dict(item), i) for i, item in enumerate(items, start=1)]
        record = Record.objects.create(
            patient_card=patient_card, kind=kind, title=title.strip()[:200],
            department=department, doctor_name=(doctor_name or "")[:50], body=body or "",
            conclusion=conclusion or "", issued_at=issued_at or timezone.now(), source=source,
            external_id=external_id or None, created_by=by)
        for item in lab_items:
            item.record = record
        LabItem.objects.bulk_create(lab_items)
        _notify_new_record(record)
    return record


def _notify_new_record(record: Record) -> None:
    member = record.patient_card.family_member
    patient_notify("report_ready", account_id=member.account_id, link=f"/records/{record.pk}/",
                   title=record.title, name=member.name)


def record_save(*, record: Record, by) -> Record:
    """Admin's save of a record's own fields (items follow in `record_items_finish`)."""
    if record.pk is None:
        record.created_by = by
        record.source = "staff"
        if record.issued_at is None:
            record.issued_at = timezone.now()
    record.save()
    return record


def record_items_finish(*, record: Record, created: bool) -> None:
    """After admin saved the items: work out missing flags; a new record tells the patient."""
    for item in record.items.filter(flag=""):
        flag = lab_flag(item.value, item.reference_range)
        if flag:
            LabItem.objects.filter(pk=item.pk).update(flag=flag)
    if created:
        _notify_new_record(record)


def record_may_read(*, record: Record, user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if record.patient_card.family_member.account_id == user.pk:
        return True
    role = (StaffMembership.objects.filter(user=user, hospital_id=connection.tenant.pk,
                                           is_active=True)
            .values_list("role", flat=True).first())
    return role in (StaffMembership.Role.HOSPITAL_ADMIN, StaffMembership.Role.DOCTOR)


def record_access(*, record_id, user, via: str) -> Record:
    """THE gate for reading a record: checks who may read it and logs the read (who, when,
    which record, through which door). Every page, admin view and API read comes here.
    Anyone else gets RecordNotFound, exactly as for an id that does not exist."""
    try:
        pk = int(record_id)
    except (TypeError, ValueError):
        raise RecordNotFound(_("Record not found.")) from None
    record = (Record.objects.select_related("patient_card__family_member", "department",
                                            "consultation")
              .filter(pk=pk).first())
    if record is None or not record_may_read(record=record, user=user):
        raise RecordNotFound(_("Record not found."))
    # Written before the record is handed back: no caller can read without a log row.
    RecordAccess.objects.create(record=record, user=user, via=via[:20])
    return record
