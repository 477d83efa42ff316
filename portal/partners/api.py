"""The partner API's base view (auth, scopes, rate limit, the hospital of the request) and the
platform-level resources (the hospitals a key is granted).

One implementation, two entry points: on the platform host a resource lives at
`/api/v1/hospitals/{code}/...` and the view switches to that hospital's schema for the request
(only if the key's partner is granted it; otherwise 404, whatever follows); on a hospital's host
the same view serves `/api/v1/...` with the hospital implied by the host.
"""

from __future__ import annotations

import copy

from django.db import connection
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.models import Hospital

from .auth import _MISSING, ApiKeyAuthentication, ApiKeyRateThrottle, HasScope, IsPartner, auth_cache
from .models import Grant


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def _error_example(status: int, code: str, message: str) -> OpenApiExample:
    return OpenApiExample(code, value={"error": {"code": code, "message": message, "details": {}}},
                          status_codes=[str(status)], response_only=True)


_COMMON_ERRORS = {
    400: ("validation_error", "The request is not valid."),
    401: ("invalid_api_key", "Invalid API key."),
    403: ("missing_scope", "This API key lacks the scope “schedules:read”."),
    404: ("not_found", "Not found."),
    429: ("rate_limited", "Too many requests. Try again in 12 seconds."),
}


# Every POST takes an Idempotency-Key (portal/partners/idempotency.py) and can answer these.
IDEMPOTENCY_PARAM = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description=_("Any unique string (e.g. a UUID). The same key with the same body returns the "
                  "stored response; with a different body, 409 idempotency_key_reused."))
_IDEMPOTENCY_ERRORS = (
    (409, "idempotency_key_reused",
     "This Idempotency-Key was already used for a different request."),
    (409, "idempotency_request_in_progress",
     "A request with this Idempotency-Key is still running; try again shortly."),
    # not about the key, but every POST (all are behind @idempotent) takes JSON only
    (415, "unsupported_media_type", "Unsupported media type “text/plain” in request."),
)


def errors(*extra: tuple[int, str, str], idempotent: bool = False) -> dict:
    """OpenAPI responses for the error statuses every operation can give, plus `extra` (and,
    for an operation behind `@idempotent`, the Idempotency-Key conflicts)."""
    statuses: dict[int, list[OpenApiExample]] = {}
    for status, (code, message) in _COMMON_ERRORS.items():
        statuses.setdefault(status, []).append(_error_example(status, code, message))
    for status, code, message in (*extra, *(_IDEMPOTENCY_ERRORS if idempotent else ())):
        statuses.setdefault(status, []).append(_error_example(status, code, message))
    return {status: OpenApiResponse(ErrorSerializer, description=", ".join(e.name for e in ex),
                                    examples=ex)
            for status, ex in statuses.items()}


class ApiCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "pk"

    def get_page_size(self, request):
        # limit=abc, 0 or -5 is a mistake to report (400), not a reason to answer 50 rows;
        # above 200 it is capped at 200, as documented.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise exceptions.ValidationError({self.page_size_query_param: [
                _("limit is a whole number from 1 to %(max)s.") % {"max": self.max_page_size}]})
        return super().get_page_size(request)

    def decode_cursor(self, request):
        # A damaged cursor is a bad request (400 on `cursor`), not a missing resource (404).
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({self.cursor_query_param: [
                _("Invalid cursor: use the next or previous link as given.")]}) from None


class HasHospitalGrant(BasePermission):
    """The request's hospital (the {code} of the platform path, or the hospital's own host) must
    be granted to the key's partner; it then becomes the request's schema. Anything else is
    404, never 403: a partner cannot tell a hospital it lacks from one that does not exist.
    Checked after the key (401) and the scope (403)."""

    def has_permission(self, request, view) -> bool:
        if getattr(view, "hospital_scoped", False):
            view.hospital = view.enter_hospital(request)  # raises NotFound
        return True


class PartnerAPIMixin:
    # Auth by API key, scopes per method, a per-key rate limit, and the request's hospital.
    # (No docstring: the OpenAPI description of an operation comes from its own view.)

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsPartner, HasScope, HasHospitalGrant]
    throttle_classes = [ApiKeyRateThrottle]
    #: method -> scope the key needs, e.g. {"GET": "schedules:read"}
    required_scopes: dict[str, str] = {}
    #: False for platform-level resources (the hospital list)
    hospital_scoped = True
    hospital: Hospital | None = None

    def dispatch(self, request, *args, **kwargs):
        self._hospital_code = kwargs.pop("hospital_code", None)
        self._switched = False
        # Partners are developers: messages follow Accept-Language (zh-hans by default).
        translation.activate(translation.get_language_from_request(request))
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._switched:
                connection.set_schema_to_public()
                timezone.deactivate()

    def perform_authentication(self, request) -> None:
        super().perform_authentication(request)
        # The rate limit right after the key, before the scope and the hospital (DRF checks it
        # last): a request refused for either counts too, and every answer to a valid key
        # carries the X-RateLimit-* headers.
        super().check_throttles(request)

    def check_throttles(self, request) -> None:
        pass  # done in perform_authentication

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        budget = getattr(request, "rate_limit", None)  # ApiKeyRateThrottle; None: no key/Redis
        if budget is not None:
            for name, value in budget.headers().items():
                response[name] = value
        return response

    def enter_hospital(self, request) -> Hospital:
        partner_id = request.auth.partner_id
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.is_public:
            # The hospital by code, only if active, ready and granted to the partner: one query,
            # cached per process (auth_cache: invalidated when grants or hospitals change).
            cache_key = ("hospital", partner_id, self._hospital_code)
            hospital = auth_cache.get(cache_key, _MISSING)
            if hospital is _MISSING:
                hospital = (Hospital.objects.filter(
                    code=self._hospital_code, is_active=True, is_ready=True,
                    partner_grants__partner_id=partner_id).exclude(schema_name="public").first()
                    if self._hospital_code else None)
                auth_cache.put(cache_key, hospital)
            if hospital is None:
                raise exceptions.NotFound()
            hospital = copy.copy(hospital)
            connection.set_tenant(hospital)
            self._switched = True
            timezone.activate(hospital.tz)
            return hospital
        granted = auth_cache.get(("grant", partner_id, tenant.pk))
        if granted is None:
            granted = Grant.objects.filter(partner_id=partner_id, hospital_id=tenant.pk).exists()
            auth_cache.put(("grant", partner_id, tenant.pk), granted)
        if not granted:
            raise exceptions.NotFound()
        return tenant


class PartnerAPIView(PartnerAPIMixin, APIView):
    pass


class PartnerListView(PartnerAPIMixin, GenericAPIView):
    pagination_class = ApiCursorPagination

    def list_response(self, queryset, serializer_class) -> Response:
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(serializer_class(page, many=True).data)


# --------------------------------------------------------------------------- hospitals


class HospitalListView(PartnerListView):
    # The hospitals this key's partner is granted (platform host only).

    hospital_scoped = False

    # (named HospitalOut, not Output: the schema component, and a generated client's class)
    class HospitalOut(serializers.Serializer):
        code = serializers.CharField()
        name = serializers.CharField()
        name_en = serializers.CharField()
        city = serializers.CharField()
        level = serializers.CharField()
        address = serializers.CharField()
        phone = serializers.CharField()
        time_zone = serializers.CharField()
        api_url = serializers.SerializerMethodField()

        def get_api_url(self, obj) -> str:
            return self.context["request"].build_absolute_uri(f"/api/v1/hospitals/{obj.code}/")

    serializer_class = HospitalOut
    pagination_class = type("HospitalCursor", (ApiCursorPagination,), {"ordering": "code"})

    @extend_schema(
        operation_id="hospitals_list", tags=["hospitals"],
        summary=_("Hospitals granted to this key (platform host)"),
        responses={200: HospitalOut(many=True), **errors()},
        examples=[OpenApiExample("granted hospitals", response_only=True, value={
                "code": "binjiang", "name": "滨江市第一人民医院",
                "name_en": "Binjiang First People's Hospital", "city": "滨江", "level": "3A",
                "address": "", "phone": "", "time_zone": "Asia/Shanghai",
                "api_url": "http://localhost:8000/api/v1/hospitals/binjiang/"})])
    def get(self, request):
        qs = (Hospital.objects.filter(is_active=True, is_ready=True,
                                      partner_grants__partner_id=request.auth.partner_id)
              .exclude(schema_name="public"))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(
            self.HospitalOut(page, many=True, context={"request": request}).data)


class NotFoundView(PartnerAPIView):
    # Anything under /api/ that is not an endpoint: the API's JSON 404, not an HTML page.

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    hospital_scoped = False

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        from django.urls import Resolver404, resolve

        path = request.path_info
        if not path.endswith("/"):
            # `.../slots` for `.../slots/`: still 404 not_found, but say what is wrong.
            try:
                match = resolve(path + "/", urlconf=getattr(request, "urlconf", None))
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundView:
                raise exceptions.NotFound(
                    _("Not found. API paths end with a slash: %(path)s/") % {"path": request.path})
        raise exceptions.NotFound()

    post = put = patch = delete = get


def hospital_base_url(request, hospital: Hospital) -> str:
    """The hospital's own site as seen from this request (its host, this scheme and port)."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None and not tenant.is_public:
        return f"{request.scheme}://{request.get_host()}"
    domain = (hospital.domains.order_by("-is_primary", "pk").values_list("domain", flat=True)
              .first()) or request.get_host()
    port = request.get_port()
    default = "443" if request.scheme == "https" else "80"
    return f"{request.scheme}://{domain}" + ("" if port in ("", default) else f":{port}")
