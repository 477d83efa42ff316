"""What the registration admin modules share: the desk admin base and display helpers."""

from __future__ import annotations

from django.contrib.admin import ActionLocation
from django.utils import timezone

from portal.accounts.models import StaffMembership
from portal.admin_sites import (
    RoleModelAdmin,
)

from ..models import (
    Schedule,
)

Role = StaffMembership.Role

# Actions offered both in the list and on the object's own page.
BOTH = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]


class DeskAdmin(RoleModelAdmin):
    """Registration admins: `operate` is the permission of the desk actions (generate, stop,
    check in, cancel), held by whoever may write here; read-only roles never get them."""

    def has_operate_permission(self, request) -> bool:
        return self._may_write(request)


def schedule_name(s: Schedule) -> str:
    return f"{s.doctor.name} {s.date.isoformat()} {s.get_period_display()}"


def hhmm(start, end) -> str:
    return f"{timezone.localtime(start):%H:%M}–{timezone.localtime(end):%H:%M}"
