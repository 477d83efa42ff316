from __future__ import annotations

from django.http import HttpRequest

from portal.accounts import sso


def site(request: HttpRequest) -> dict:
    tenant = getattr(request, "tenant", None)
    on_hospital = tenant is not None and not tenant.is_public
    return {
        "hospital": tenant if on_hospital else None,
        "on_hospital_site": on_hospital,
        "platform_home_url": sso.platform_url(request, "/") if on_hospital else "/",
    }
