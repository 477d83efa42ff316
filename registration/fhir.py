"""FHIR R4 read facade at /fhir/r4/{code}/ (platform host), for keys granted that hospital.

Practitioner (doctors), Schedule (clinic sessions), Slot (time slices: free|busy), Appointment
(this partner's own bookings), each with read and search returning a `searchset` Bundle with
paging links (`_count`, `_offset`), plus `metadata` (the CapabilityStatement). Errors are
OperationOutcome resources. Same API key, grants, scopes and rate limit as the REST API.

A view of registration's data, so it lives here; portal/partners/urls.py mounts it.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import Q
from django.urls import path, re_path
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.partners.api import PartnerAPIView
from portal.partners.errors import api_exception_handler
from portal.partners.models import PartnerRecord
from portal.partners.services import own_object_ids

FHIR_VERSION = "4.0.1"
DEPARTMENT_SYSTEM = "urn:hospital-portal:department"
MAX_COUNT = 200


class FhirJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


_OUTCOME_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                  405: "not-supported", 409: "conflict", 429: "throttled"}


def fhir_exception_handler(exc, context):
    """The API's error, as an OperationOutcome (its stable code in details.text)."""
    response = api_exception_handler(exc, context)
    error = response.data["error"]
    code = _OUTCOME_CODES.get(response.status_code, "exception")
    # One issue per offending parameter, naming it (FHIR's `expression`) and saying what is
    # wrong with it: "请求无效。" alone does not tell a partner which parameter to fix.
    issues = [{"severity": "error", "code": code, "details": {"text": error["code"]},
               "diagnostics": f"{error['message']} {field}: {message}", "expression": [field]}
              for field, message in _field_messages(error["details"])]
    response.data = {"resourceType": "OperationOutcome", "issue": issues or [{
        "severity": "error", "code": code, "details": {"text": error["code"]},
        "diagnostics": error["message"]}]}
    return response


def _field_messages(details, prefix: str = ""):
    """(parameter, message) pairs of a validation error's details."""
    if not isinstance(details, dict):
        return
    for field, value in details.items():
        name = f"{prefix}{field}"
        if isinstance(value, dict) and "message" not in value:
            yield from _field_messages(value, f"{name}.")
            continue
        for item in value if isinstance(value, list) else [value]:
            yield name, str(item.get("message", "") if isinstance(item, dict) else item)


def _iso(value: datetime) -> str:
    return timezone.localtime(value).isoformat()


def _ref(kind: str, pk) -> dict:
    return {"reference": f"{kind}/{pk}"}


def _service_type(department) -> list[dict]:
    return [{"coding": [{"system": DEPARTMENT_SYSTEM, "code": department.code,
                         "display": department.name}], "text": department.name}]


# --------------------------------------------------------------------------- resources


def practitioner(doctor) -> dict:
    return {"resourceType": "Practitioner", "id": str(doctor.pk), "active": doctor.is_active,
            "name": [{"text": doctor.name}],
            "qualification": [{"code": {"text": doctor.get_title_display()}}]}


def schedule_resource(schedule) -> dict:
    from registration.models import Schedule

    day = schedule.date.isoformat()
    return {"resourceType": "Schedule", "id": str(schedule.pk),
            "active": schedule.status == Schedule.Status.OPEN,
            "serviceType": _service_type(schedule.doctor.department),
            "actor": [{**_ref("Practitioner", schedule.doctor_id),
                       "display": schedule.doctor.name}],
            "planningHorizon": {"start": f"{day}T00:00:00{_offset()}",
                                "end": f"{day}T23:59:59{_offset()}"},
            "comment": schedule.get_period_display()}


def _offset() -> str:
    return timezone.localtime(timezone.now()).strftime("%z")[:3] + ":" + \
        timezone.localtime(timezone.now()).strftime("%z")[3:]


def slot_status(slice_) -> str:
    """FHIR's Slot.status: free when bookable now, else busy (registration's one rule)."""
    from registration.services.rules import SliceState, time_slice_state

    return "free" if time_slice_state(slice_) == SliceState.BOOKABLE else "busy"


def slot_resource(slice_) -> dict:
    return {"resourceType": "Slot", "id": str(slice_.pk),
            "serviceType": _service_type(slice_.schedule.doctor.department),
            "schedule": _ref("Schedule", slice_.schedule_id), "status": slot_status(slice_),
            "start": _iso(slice_.start), "end": _iso(slice_.end),
            "comment": f"remaining {max(0, slice_.capacity - slice_.booked)} of "
                       f"{slice_.capacity}"}


_APPOINTMENT_STATUS = {"held": "pending", "confirmed": "booked", "checked_in": "checked-in",
                       "cancelled": "cancelled", "expired": "cancelled", "stopped": "cancelled",
                       "no_show": "noshow"}


def appointment(booking) -> dict:
    return {"resourceType": "Appointment", "id": str(booking.pk),
            "status": _APPOINTMENT_STATUS.get(booking.status, "pending"),
            "serviceType": _service_type(booking.doctor.department),
            "start": _iso(booking.slice.start), "end": _iso(booking.slice.end),
            "created": _iso(booking.created_at),
            "slot": [_ref("Slot", booking.slice_id)],
            "participant": [
                {"actor": {**_ref("Practitioner", booking.doctor_id),
                           "display": booking.doctor.name}, "status": "accepted"},
                {"actor": {"display": booking.family_member.name}, "status": "accepted"}]}


# --------------------------------------------------------------------------- search helpers

_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.+)$")


def _date_filter(field: str, values: list[str]) -> Q:
    """FHIR date search: start=ge2026-12-01&start=le2026-12-02T12:00:00+08:00."""
    q = Q()
    for raw in values:
        # an unencoded "+08:00" arrives as " 08:00": take it as meant
        prefix, value = _PREFIX.match(raw.strip().replace(" ", "+")).groups()
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value) if len(value) == 10 else None
            if day is None:
                raise exceptions.ValidationError({field: [f"Not a FHIR date: {raw}"]})
            moment = timezone.make_aware(datetime.combine(day, datetime.min.time()))
        elif timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        lookup = {"gt": "gt", "sa": "gt", "lt": "lt", "eb": "lt", "ge": "gte", "le": "lte"}.get(
            prefix or "eq")
        if lookup is None and (prefix or "eq") in ("eq", "ap") and len(value) == 10:
            q &= Q(**{f"{field}__date": moment.date()})
        elif lookup is None:
            q &= Q(**{field: moment})
        else:
            q &= Q(**{f"{field}__{lookup}": moment})
    return q


def _reference_id(value: str, kind: str) -> int:
    raw = value.split("/", 1)[1] if value.startswith(f"{kind}/") else value
    if not raw.isdigit() or len(raw) > 18:
        raise exceptions.ValidationError({kind.lower(): [f"Not a {kind} reference: {value}"]})
    return int(raw)


def _token(value: str) -> str:
    return value.split("|", 1)[1] if "|" in value else value


# --------------------------------------------------------------------------- views


class FhirView(PartnerAPIView):
    renderer_classes = [FhirJSONRenderer, JSONRenderer]

    def get_exception_handler(self):
        return fhir_exception_handler

    def bundle(self, request, queryset, to_resource) -> Response:
        try:
            count = min(int(request.GET.get("_count", 50)), MAX_COUNT)
            offset = max(int(request.GET.get("_offset", 0)), 0)
        except ValueError:
            raise exceptions.ValidationError({"_count": ["_count and _offset are integers."]}) from None
        count = max(count, 1)
        total = queryset.count()
        # Past the end there is nothing to read (and an _offset beyond bigint would make
        # PostgreSQL fail: a 500 instead of an empty page).
        rows = list(queryset[offset:offset + count]) if offset < total else []
        base = request.build_absolute_uri(request.path)
        params = {k: v for k, v in request.GET.lists() if k not in ("_offset",)}

        def link(relation: str, at: int) -> dict:
            query = urlencode([(k, v) for k, vs in params.items() for v in vs] +
                              [("_offset", at)])
            return {"relation": relation, "url": f"{base}?{query}"}

        links = [link("self", offset)]
        if offset + count < total:
            links.append(link("next", offset + count))
        if offset > 0:
            links.append(link("previous", max(0, min(offset, total) - count)))
        entries = []
        for row in rows:
            resource = to_resource(row)
            entries.append({"fullUrl": f"{base.rstrip('/')}/{resource['id']}",
                            "resource": resource, "search": {"mode": "match"}})
        return Response({"resourceType": "Bundle", "type": "searchset", "total": total,
                         "link": links, "entry": entries})


def _practitioners():
    from registration.models import Doctor

    return Doctor.objects.select_related("department").order_by("pk")


def _schedules():
    from registration.models import Schedule

    return Schedule.objects.select_related("doctor__department").order_by("date", "pk")


def _slots():
    from registration.models import TimeSlice

    return TimeSlice.objects.select_related("schedule__doctor__department").order_by("start", "pk")


def _appointments(request, hospital):
    from registration.models import Booking

    return (Booking.objects.filter(pk__in=own_object_ids(partner=request.auth.partner,
                                                         hospital=hospital,
                                                         kind=PartnerRecord.Kind.BOOKING))
            .select_related("doctor__department", "slice", "family_member").order_by("-pk"))


class PractitionerSearch(FhirView):
    required_scopes = {"GET": "schedules:read"}

    @extend_schema(exclude=True)
    def get(self, request, pk: int | None = None):
        if pk is not None:
            return Response(practitioner(_get(_practitioners(), pk)))
        return self.bundle(request, _practitioners().filter(is_active=True), practitioner)


class ScheduleSearch(FhirView):
    required_scopes = {"GET": "schedules:read"}

    @extend_schema(exclude=True)
    def get(self, request, pk: int | None = None):
        if pk is not None:
            return Response(schedule_resource(_get(_schedules(), pk)))
        qs = _schedules()
        if "actor" in request.GET:
            qs = qs.filter(doctor_id=_reference_id(request.GET["actor"], "Practitioner"))
        if "service-type" in request.GET:
            qs = qs.filter(doctor__department__code=_token(request.GET["service-type"]))
        if "date" in request.GET:
            days = request.GET.getlist("date")
            qs = qs.filter(_date_filter("slices__start", days)).distinct()
        return self.bundle(request, qs, schedule_resource)


class SlotSearch(FhirView):
    required_scopes = {"GET": "schedules:read"}

    @extend_schema(exclude=True)
    def get(self, request, pk: int | None = None):
        if pk is not None:
            return Response(slot_resource(_get(_slots(), pk)))
        qs = _slots()
        if "schedule" in request.GET:
            qs = qs.filter(schedule_id=_reference_id(request.GET["schedule"], "Schedule"))
        if "start" in request.GET:
            qs = qs.filter(_date_filter("start", request.GET.getlist("start")))
        if "service-type" in request.GET:
            qs = qs.filter(schedule__doctor__department__code=_token(
                request.GET["service-type"]))
        status = request.GET.get("status")
        if status is not None:
            from registration.services.rules import bookable_slices_q

            # free = bookable now (the Slot resource's status uses the same rule)
            free = bookable_slices_q()
            if status == "free":
                qs = qs.filter(free)
            elif status == "busy":
                qs = qs.exclude(free)
            else:
                raise exceptions.ValidationError({"status": ["status is free or busy."]})
        rows = qs
        return self.bundle(request, rows, slot_resource)


class AppointmentSearch(FhirView):
    required_scopes = {"GET": "bookings:read"}

    @extend_schema(exclude=True)
    def get(self, request, pk: int | None = None):
        qs = _appointments(request, self.hospital)
        if pk is not None:
            return Response(appointment(_get(qs, pk)))
        return self.bundle(request, qs, appointment)


def _get(queryset, pk: int):
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise exceptions.NotFound()
    return row


class Metadata(FhirView):
    required_scopes: dict = {}

    @extend_schema(exclude=True)
    def get(self, request):
        def resource(kind: str, params: list[tuple[str, str]]) -> dict:
            return {"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [{"name": n, "type": t} for n, t in params]}

        return Response({
            "resourceType": "CapabilityStatement", "status": "active",
            "date": timezone.now().date().isoformat(), "kind": "instance",
            "fhirVersion": FHIR_VERSION, "format": ["json"],
            "software": {"name": "Hospital portal FHIR facade"},
            "implementation": {"description": self.hospital.name,
                               "url": request.build_absolute_uri(request.path.rsplit(
                                   "metadata", 1)[0])},
            "rest": [{"mode": "server", "resource": [
                resource("Practitioner", []),
                resource("Schedule", [("actor", "reference"), ("service-type", "token"),
                                      ("date", "date")]),
                resource("Slot", [("schedule", "reference"), ("start", "date"),
                                  ("status", "token"), ("service-type", "token")]),
                resource("Appointment", []),
            ]}]})


class NotSupported(FhirView):
    """Any other resource type or interaction: an OperationOutcome 404 (after the key checks)."""

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        raise exceptions.NotFound()

    post = put = patch = delete = get


urlpatterns = [
    path("metadata", Metadata.as_view()),
    path("Practitioner", PractitionerSearch.as_view()),
    path("Practitioner/<int:pk>", PractitionerSearch.as_view()),
    path("Schedule", ScheduleSearch.as_view()),
    path("Schedule/<int:pk>", ScheduleSearch.as_view()),
    path("Slot", SlotSearch.as_view()),
    path("Slot/<int:pk>", SlotSearch.as_view()),
    path("Appointment", AppointmentSearch.as_view()),
    path("Appointment/<int:pk>", AppointmentSearch.as_view()),
    re_path(r"^.*$", NotSupported.as_view()),
]
