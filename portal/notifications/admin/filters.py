"""List filters shared by the delivery logs (outbox deliveries and webhook deliveries)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class DeliveryEventKindFilter(admin.SimpleListFilter):
    """Event kinds among the deliveries this admin may see (not other hospitals' kinds)."""

    title = _("event")
    parameter_name = "event__kind"

    def lookups(self, request, model_admin):
        kinds = (model_admin.get_queryset(request).order_by()
                 .values_list("event__kind", flat=True).distinct())
        return [(k, k) for k in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(event__kind=self.value())
        return queryset


class EventKindFilter(DeliveryEventKindFilter):
    """The same on the events themselves."""

    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = model_admin.get_queryset(request).order_by().values_list(
            "kind", flat=True).distinct()
        return [(k, k) for k in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset
