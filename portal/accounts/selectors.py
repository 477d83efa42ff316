"""Read queries for accounts."""

from __future__ import annotations

from django.http import HttpRequest

from .models import StaffMembership


def staff_role(request: HttpRequest) -> str | None:
    """The signed-in user's role at the request's hospital, or None. Cached on the request."""
    if not hasattr(request, "_staff_role"):
        role = None
        user = request.user
        tenant = getattr(request, "tenant", None)
        if user.is_authenticated and user.is_active and tenant is not None and not tenant.is_public:
            role = (StaffMembership.objects.filter(user=user, hospital_id=tenant.pk,
                                                   is_active=True)
                    .values_list("role", flat=True).first())
        request._staff_role = role
    return request._staff_role
