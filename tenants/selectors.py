from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Hospital


def hospital_list(*, q: str = "", city: str = "") -> QuerySet[Hospital]:
    """Active hospitals (never the platform itself), filtered by name and city, with domains."""
    qs = (Hospital.objects.filter(is_active=True, is_ready=True)
          .exclude(schema_name="public").prefetch_related("domains").order_by("city", "name"))
    q = q.strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(name_en__icontains=q) | Q(code__iexact=q))
    if city.strip():
        qs = qs.filter(city=city.strip())
    return qs


def hospital_cities() -> list[str]:
    return list(Hospital.objects.filter(is_active=True, is_ready=True)
                .exclude(schema_name="public").exclude(city="")
                .order_by("city").values_list("city", flat=True).distinct())


def hospital_site_url(hospital: Hospital, *, scheme: str, port: str) -> str | None:
    """The hospital's primary site URL as seen from a request on `scheme` and `port`."""
    domains = list(hospital.domains.all())  # prefetched by hospital_list
    primary = next((d for d in domains if d.is_primary), domains[0] if domains else None)
    if primary is None:
        return None
    default = "443" if scheme == "https" else "80"
    suffix = "" if port in ("", default) else f":{port}"
    return f"{scheme}://{primary.domain}{suffix}/"
