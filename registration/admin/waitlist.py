"""The waitlist and booking bans (no-show strikes)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.selectors import staff_role
from portal.admin_sites import (
    ReadOnlyModelAdmin,
    RoleModelAdmin,
    hospital_admin_site,
)

from ..models import (
    BookingBan,
    WaitlistEntry,
)
from .base import Role


class WaitlistStatusFilter(admin.ChoicesFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("status")


@admin.register(WaitlistEntry, site=hospital_admin_site)
class WaitlistEntryAdmin(ReadOnlyModelAdmin):
    # WaitlistEntry's fields have no verbose names (naming them would be a migration): the
    # columns, filter and fields are named here, in the staff's language.
    list_display = ("entry_schedule", "entry_patient", "entry_status", "entry_booking",
                    "entry_created_at")
    list_filter = (("status", WaitlistStatusFilter), "schedule__date",
                   "schedule__doctor__department")
    list_select_related = ("schedule__doctor", "family_member", "booking__doctor")
    search_fields = ("family_member__name", "schedule__doctor__name")
    fields = list_display
    readonly_fields = fields

    @admin.display(description=_("schedule"), ordering="schedule__date")
    def entry_schedule(self, obj):
        return obj.schedule

    @admin.display(description=_("patient"), ordering="family_member__name")
    def entry_patient(self, obj):
        return obj.family_member

    @admin.display(description=_("status"), ordering="status")
    def entry_status(self, obj):
        return obj.get_status_display()

    @admin.display(description=_("booking"))
    def entry_booking(self, obj):
        return obj.booking or "-"

    @admin.display(description=_("created at"), ordering="created_at")
    def entry_created_at(self, obj):
        return obj.created_at


@admin.register(BookingBan, site=hospital_admin_site)
class BookingBanAdmin(RoleModelAdmin):
    """Bans come from the no-show job; a hospital admin lifts one by deleting it (logged in
    the admin history)."""

    list_display = ("family_member", "until", "in_force", "reason", "created_at")
    list_filter = ("until",)
    list_select_related = ("family_member",)
    search_fields = ("family_member__name",)
    fields = ("family_member", "until", "reason", "created_at")
    readonly_fields = fields

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, obj):
        return obj.until >= timezone.localdate()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return staff_role(request) == Role.HOSPITAL_ADMIN
