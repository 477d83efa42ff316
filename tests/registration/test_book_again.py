"""A booking that lost its place (expired, cancelled, stopped) leads back to the doctor's times.

The expired booking's page said "Expired (not paid in time)" and nothing else: a patient who
still needed the appointment had to find the department and the doctor again.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from registration.models import Booking, TimeSlice
from registration.services import booking as svc
from tests.helpers import HOSPITAL_A, host_client, in_schema
from tests.registration.helpers import make_patient, make_session


def test_book_again_from_an_expired_booking_and_not_from_an_active_one(hospital_a):
    user, member = make_patient()
    day = timezone.localdate() + timedelta(days=3)
    with in_schema(hospital_a):
        doctor, schedule = make_session(day=day, name="再约医生")
        booking = svc.booking_hold(slice_id=TimeSlice.objects.filter(schedule=schedule)
                                   .first().pk, family_member=member, account=user)
    client = host_client(HOSPITAL_A["domain"], user)
    assert 'id="book-again"' not in client.get(f"/bookings/{booking.pk}/").content.decode()
    with in_schema(hospital_a):
        Booking.objects.filter(pk=booking.pk).update(
            hold_expires_at=timezone.now() - timedelta(minutes=1))
        assert svc.booking_expire(booking_id=booking.pk)
    html = client.get(f"/bookings/{booking.pk}/").content.decode()
    assert 'id="book-again"' in html
    assert f'href="/doctors/{doctor.pk}/?date={day.isoformat()}"' in html and "重新预约" in html
