"""Registration test tools: resident ID numbers, patients with a family member, and a doctor
with a session."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

from django.utils import timezone

from portal.accounts.services import family_member_add
from tests.helpers import make_user

_seq = itertools.count(1)


def valid_id(birth: str = "19900307") -> str:
    """A fresh valid resident ID number (GB 11643 check digit) per call."""
    from portal.accounts.validators import id_check_digit

    first17 = f"110101{birth}{next(_seq) % 1000:03d}"
    return first17 + id_check_digit(first17)


def make_patient(name: str = "患者"):
    user = make_user(name=name)
    member = family_member_add(account=user, name=name, relation="self", id_number=valid_id())
    return user, member


def make_session(*, day=None, fee=2000, capacity=5, slices=4, name="张医生", title="attending"):
    """A doctor (cardiology) and one morning session with `slices` slices; in the current schema."""
    from registration.models import Department, Doctor, Schedule
    from registration.services.schedules import slices_create

    day = day or timezone.localdate() + timedelta(days=1)
    doctor = Doctor.objects.create(department=Department.objects.get(code="cardiology"),
                                   name=name, title=title)
    schedule = Schedule.objects.create(doctor=doctor, date=day, period="am", fee_fen=fee)
    end = (datetime.combine(day, time(8, 0)) + timedelta(minutes=30 * slices)).time()
    slices_create(schedule=schedule, start_time=time(8, 0), end_time=end, minutes=30,
                  capacity=capacity)
    return doctor, schedule
