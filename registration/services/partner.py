"""Bookings made through the partner API. Run inside the hospital's schema."""

from __future__ import annotations

from django.db import connection, transaction

from portal.partners.models import PartnerRecord
from portal.partners.services import patient_resolve, record_object

from ..models import Booking
from .booking import booking_hold


def booking_create_for_partner(*, partner, slice_id: int, name: str, id_number: str,
                               mobile: str) -> Booking:
    """A booking made through the partner API: find or create the patient's platform account
    and family member, take the place through `booking_hold` (every registration rule
    applies, source "api"), and remember which partner made it, all in one transaction."""
    with transaction.atomic():
        account, member = patient_resolve(name=name, id_number=id_number, mobile=mobile)
        booking = booking_hold(slice_id=slice_id, family_member=member, account=account,
                               source="api")
        record_object(partner=partner, hospital=connection.tenant,
                      kind=PartnerRecord.Kind.BOOKING, object_id=booking.pk)
    return booking
