from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import hospital_cities, hospital_list, hospital_site_url


def _search_text(request: HttpRequest, name: str) -> str:
    """A free-text query parameter, as PostgreSQL can take it: a NUL character (which no
    form would send, but a hand-edited or scanned URL does) made the platform home a 500."""
    return request.GET.get(name, "").replace("\x00", "").strip()[:100]


def platform_home(request: HttpRequest) -> HttpResponse:
    q = _search_text(request, "q")
    city = _search_text(request, "city")
    page = Paginator(hospital_list(q=q, city=city), 20).get_page(request.GET.get("page"))
    port = request.get_port()
    for hospital in page:
        hospital.site_url = hospital_site_url(hospital, scheme=request.scheme, port=port)
    return render(request, "tenants/platform_home.html",
                  {"page": page, "q": q, "city": city, "cities": hospital_cities()})

