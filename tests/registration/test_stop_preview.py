"""Stop-clinic's confirmation page says what stopping will do, before anyone is told.

It used to list only the sessions' names: staff confirmed a mass cancellation and refund
without seeing how many patients, how many paid, or how much money goes back.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from registration.services import booking as svc
from tests.helpers import in_schema
from tests.registration.helpers import make_patient, make_session
from tests.registration.test_admin import SCHEDULES, _desk, _first_slice, _pay


def test_stop_preview_counts_bookings_paid_and_refund_before_confirming(hospital_a):
    _, client = _desk(hospital_a, "registrar")
    with in_schema(hospital_a):
        # Three days ahead: the patient's cancellation below is before any cut-off.
        _, schedule = make_session(name="预告医生", fee=2000,
                                   day=timezone.localdate() + timedelta(days=3))
        held = []
        for i in range(3):
            user, member = make_patient(f"预告患者{i}")
            held.append(svc.booking_hold(slice_id=_first_slice(schedule).pk,
                                         family_member=member, account=user))
        _pay(held[0], f"preview-{held[0].pk}")
        _pay(held[1], f"preview-{held[1].pk}")
        svc.booking_cancel(booking=held[1], actor=held[1].account)  # refunded, not counted
    page = client.post(SCHEDULES, {"action": "stop_clinic",
                                   "_selected_action": [str(schedule.pk)]}).content.decode()
    assert "2 bookings to cancel, 1 of them paid, ¥20.00 to refund" in page
    assert 'name="reason"' in page
