"""Partner API: departments, doctors, schedules and slots with remaining places, bookings.

Thin views (parse, call a selector or service, serialize); auth, scopes, the hospital of the
request and errors come from `portal.partners.api`. Served on both entry points (see there).
"""

from __future__ import annotations

import logging

import django_filters
from django import forms
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from portal.partners.api import (
    IDEMPOTENCY_PARAM,
    ApiCursorPagination,
    PartnerAPIView,
    PartnerListView,
    errors,
)
from portal.partners.idempotency import idempotent
from portal.partners.models import PartnerRecord
from portal.partners.serializers import PatientIn, PatientOut
from portal.partners.services import own_object_ids

from .models import Booking, Department, Doctor, Schedule, TimeSlice
from .services import booking as booking_services
from .services import partner as partner_services
from .services.rules import (
    SliceState,
    bookable_slices_q,
    doctor_fee_fen,
    latest_open_day,
    release_moment,
    slice_state,
    time_slice_state,
    title_fees,
)

log = logging.getLogger(__name__)

def _cursor(*ordering: str):
    return type("Cursor", (ApiCursorPagination,), {"ordering": ordering or "pk"})


# --------------------------------------------------------------------------- serializers


class DepartmentOut(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Department
        fields = ["id", "code", "name", "name_en", "parent", "location", "intro"]
        read_only_fields = fields  # always in the response: required in the schema


class DoctorOut(serializers.ModelSerializer):
    department = serializers.CharField(source="department.code")
    photo_url = serializers.CharField(help_text="A URL, or empty when there is no photo.")
    fee_fen = serializers.SerializerMethodField()

    class Meta:
        model = Doctor
        fields = ["id", "name", "name_en", "title", "department", "specialties", "intro",
                  "photo_url", "fee_fen"]
        read_only_fields = fields  # always in the response: required in the schema

    def get_fee_fen(self, obj) -> int:
        return doctor_fee_fen(obj, fees=self.context.get("title_fees"))


class ScheduleOut(serializers.ModelSerializer):
    doctor = serializers.IntegerField(source="doctor_id")
    doctor_name = serializers.CharField(source="doctor.name")
    department = serializers.CharField(source="doctor.department.code")
    capacity = serializers.IntegerField()
    remaining = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = ["id", "doctor", "doctor_name", "department", "date", "period", "status",
                  "fee_fen", "capacity", "remaining"]
        read_only_fields = fields  # always in the response: required in the schema

    def get_remaining(self, obj) -> int:
        return obj.remaining if obj.status == Schedule.Status.OPEN else 0


SLOT_STATUSES = ["free", "busy", "not_yet_released"]


class SlotOut(serializers.ModelSerializer):
    schedule = serializers.IntegerField(source="schedule_id")
    doctor = serializers.IntegerField(source="schedule.doctor_id")
    doctor_name = serializers.CharField(source="schedule.doctor.name")
    department = serializers.CharField(source="schedule.doctor.department.code")
    date = serializers.DateField(source="schedule.date")
    fee_fen = serializers.IntegerField(source="schedule.fee_fen")
    remaining = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField(
        help_text="free: places left and bookable now; busy: full, stopped or past; "
                  "not_yet_released: places open at released_at.")
    released_at = serializers.SerializerMethodField()

    class Meta:
        model = TimeSlice
        fields = ["id", "schedule", "doctor", "doctor_name", "department", "date", "start",
                  "end", "capacity", "remaining", "fee_fen", "status", "released_at"]
        read_only_fields = fields  # always in the response: required in the schema

    def get_remaining(self, obj) -> int:
        return max(0, obj.capacity - obj.booked) if obj.schedule.status == "open" else 0

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_released_at(self, obj) -> str:
        return timezone.localtime(release_moment(obj.schedule.date)).isoformat()

    @extend_schema_field(serializers.ChoiceField(choices=SLOT_STATUSES))
    def get_status(self, obj) -> str:
        return slot_status(obj)


# The API's names of rules.SliceState (SLOT_STATUSES).
_SLOT_STATUS = {SliceState.BOOKABLE: "free", SliceState.NOT_RELEASED: "not_yet_released",
                SliceState.SOLD_OUT: "busy", SliceState.PAST: "busy", SliceState.STOPPED: "busy"}


def slot_status(obj: TimeSlice) -> str:
    """The slot's status as the API names it (`rules.time_slice_state`)."""
    return _SLOT_STATUS[time_slice_state(obj)]


class PaymentOut(serializers.Serializer):
    order_no = serializers.CharField(source="out_trade_no")
    amount_fen = serializers.IntegerField(source="self_pay_fen")
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    cashier_url = serializers.CharField(allow_null=True)


class BookingOut(serializers.ModelSerializer):
    slot = serializers.IntegerField(source="slice_id")
    schedule = serializers.IntegerField(source="schedule_id")
    doctor = serializers.IntegerField(source="doctor_id")
    doctor_name = serializers.CharField(source="doctor.name")
    department = serializers.CharField(source="doctor.department.code")
    start = serializers.DateTimeField(source="slice.start")
    end = serializers.DateTimeField(source="slice.end")
    patient = PatientOut(source="family_member")
    payment = serializers.SerializerMethodField()

    class Meta:
        model = Booking
        fields = ["id", "status", "slot", "schedule", "doctor", "doctor_name", "department",
                  "date", "start", "end", "queue_number", "fee_fen", "patient",
                  "hold_expires_at", "payment", "created_at", "confirmed_at", "cancelled_at",
                  "cancel_reason"]
        read_only_fields = fields  # always in the response: required in the schema

    @extend_schema_field(PaymentOut(allow_null=True))
    def get_payment(self, obj):
        if obj.order_id is None:
            return None
        order = obj.order
        return PaymentOut({"out_trade_no": order.out_trade_no, "self_pay_fen": order.self_pay_fen,
                           "status": order.status, "expires_at": order.expires_at,
                           "cashier_url": self.context.get("cashier_url")}).data


BOOKING_EXAMPLE = {
    "id": 812, "status": "held", "slot": 4471, "schedule": 391, "doctor": 17,
    "doctor_name": "王建国", "department": "cardiology", "date": "2026-12-03",
    "start": "2026-12-03T08:30:00+08:00", "end": "2026-12-03T09:00:00+08:00",
    "queue_number": 6, "fee_fen": 2000,
    "patient": {"name": "张伟", "id_number": "110101********0011", "mobile": "138****8000"},
    "hold_expires_at": "2026-12-01T10:15:00+08:00",
    "payment": {"order_no": "P261201100000A1B2C3D4E5", "amount_fen": 2000, "status": "created",
                "expires_at": "2026-12-01T10:15:00+08:00",
                "cashier_url": "http://127.0.0.1:8001/cashier/P261201100000A1B2C3D4E5"},
    "created_at": "2026-12-01T10:00:00+08:00", "confirmed_at": None, "cancelled_at": None,
    "cancel_reason": ""}


# --------------------------------------------------------------------------- filters

MAX_ID = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """An integer id (a decimal like 1.5 or an id beyond bigint is a 400, not a query)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)



class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0), anything else a 400: `available=yes` must not list every slot."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError(_("Use true or false."), code="invalid")

    def validate(self, value):
        pass


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class ScheduleFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="doctor__department__code",
                                           help_text="Department code, e.g. cardiology.")
    doctor = IdFilter(field_name="doctor_id", help_text="Doctor id.")
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    available = StrictBooleanFilter(
        method="filter_available",
        help_text="true: only sessions with places that can be booked now.")

    class Meta:
        model = Schedule
        fields = ["department", "doctor", "date_from", "date_to", "available"]

    def filter_available(self, queryset, name, value):
        if value:
            return queryset.filter(status=Schedule.Status.OPEN, remaining__gt=0,
                                   date__lte=latest_open_day())
        return queryset


class SlotFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="schedule__doctor__department__code",
                                           help_text="Department code, e.g. cardiology.")
    doctor = IdFilter(field_name="schedule__doctor_id", help_text="Doctor id.")
    schedule = IdFilter(field_name="schedule_id", help_text="Schedule id.")
    date_from = django_filters.DateFilter(field_name="schedule__date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="schedule__date", lookup_expr="lte")
    available = StrictBooleanFilter(
        method="filter_available",
        help_text="true: only slots with places that can be booked now (status free).")

    class Meta:
        model = TimeSlice
        fields = ["department", "doctor", "schedule", "date_from", "date_to", "available"]

    def filter_available(self, queryset, name, value):
        if value:
            return queryset.filter(bookable_slices_q())
        return queryset


# --------------------------------------------------------------------------- views

_READ = {"GET": "schedules:read"}


class DepartmentListView(PartnerListView):
    required_scopes = _READ
    pagination_class = _cursor("sort_order", "pk")
    serializer_class = DepartmentOut

    @extend_schema(
        operation_id="departments_list", tags=["catalogue"], summary=_("Departments"),
        responses={200: DepartmentOut(many=True), **errors()},
        examples=[OpenApiExample("departments", response_only=True, value={
                "id": 3, "code": "cardiology", "name": "心血管内科", "name_en": "Cardiology",
                 "parent": "internal", "location": "门诊楼 3 楼", "intro": ""})])
    def get(self, request, **kwargs):
        qs = Department.objects.filter(is_active=True).select_related("parent")
        return self.list_response(qs, DepartmentOut)


class DoctorFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="department__code",
                                           help_text="Department code, e.g. cardiology.")

    class Meta:
        model = Doctor
        fields = ["department"]


class DoctorListView(PartnerListView):
    required_scopes = _READ
    pagination_class = _cursor("sort_order", "pk")
    serializer_class = DoctorOut
    queryset = Doctor.objects.none()  # for the OpenAPI filter parameters only
    filter_backends = [DjangoFilterBackend]
    filterset_class = DoctorFilter

    @extend_schema(
        operation_id="doctors_list", tags=["catalogue"], summary=_("Doctors"),
        responses={200: DoctorOut(many=True), **errors()},
        examples=[OpenApiExample("doctors", response_only=True, value={
                "id": 17, "name": "王建国", "name_en": "Wang Jianguo", "title": "chief",
                 "department": "cardiology", "specialties": "冠心病", "intro": "",
                 "photo_url": "", "fee_fen": 5000})])
    def get(self, request, **kwargs):
        qs = Doctor.objects.filter(is_active=True).select_related("department")
        page = self.paginate_queryset(self.filter_queryset(qs))
        fees = title_fees()
        return self.get_paginated_response(
            DoctorOut(page, many=True, context={"title_fees": fees}).data)


class DoctorDetailView(PartnerAPIView):
    required_scopes = _READ

    @extend_schema(
        operation_id="doctors_retrieve", tags=["catalogue"], summary=_("One doctor"),
        responses={200: DoctorOut, **errors()},
        examples=[OpenApiExample("doctor", response_only=True, value={
            "id": 17, "name": "王建国", "name_en": "Wang Jianguo", "title": "chief",
            "department": "cardiology", "specialties": "冠心病", "intro": "", "photo_url": "",
            "fee_fen": 5000})])
    def get(self, request, pk: int, **kwargs):
        doctor = Doctor.objects.select_related("department").filter(pk=pk, is_active=True).first()
        if doctor is None:
            raise exceptions.NotFound()
        fees = title_fees()
        return Response(DoctorOut(doctor, context={"title_fees": fees}).data)


class ScheduleListView(PartnerListView):
    required_scopes = _READ
    pagination_class = _cursor("date", "pk")
    serializer_class = ScheduleOut
    queryset = Schedule.objects.none()  # for the OpenAPI filter parameters only
    filter_backends = [DjangoFilterBackend]
    filterset_class = ScheduleFilter

    @extend_schema(
        operation_id="schedules_list", tags=["catalogue"],
        summary=_("Clinic sessions with remaining places"),
        responses={200: ScheduleOut(many=True), **errors()},
        examples=[OpenApiExample("schedules", response_only=True, value={
                "id": 391, "doctor": 17, "doctor_name": "王建国", "department": "cardiology",
                 "date": "2026-12-03", "period": "am", "status": "open", "fee_fen": 5000,
                 "capacity": 40, "remaining": 12})])
    def get(self, request, **kwargs):
        now = timezone.now()
        qs = (Schedule.objects.select_related("doctor__department")
              .annotate(capacity=Coalesce(Sum("slices__capacity"), 0),
                        remaining=Coalesce(Sum(F("slices__capacity") - F("slices__booked"),
                                               filter=Q(slices__start__gt=now)), 0)))
        return self.list_response(qs, ScheduleOut)


class SlotListView(PartnerListView):
    required_scopes = _READ
    pagination_class = _cursor("start", "pk")
    serializer_class = SlotOut
    queryset = TimeSlice.objects.none()  # for the OpenAPI filter parameters only
    filter_backends = [DjangoFilterBackend]
    filterset_class = SlotFilter

    @extend_schema(
        operation_id="slots_list", tags=["catalogue"],
        summary=_("Bookable time slots (号源) with remaining places"),
        responses={200: SlotOut(many=True), **errors()},
        examples=[OpenApiExample("slots", response_only=True, value={
                "id": 4471, "schedule": 391, "doctor": 17, "doctor_name": "王建国",
                 "department": "cardiology", "date": "2026-12-03",
                 "start": "2026-12-03T08:30:00+08:00", "end": "2026-12-03T09:00:00+08:00",
                 "capacity": 5, "remaining": 3, "fee_fen": 5000, "status": "free",
                 "released_at": "2026-11-26T08:00:00+08:00"})])
    def get(self, request, **kwargs):
        # The hottest read of the API (partners poll it): rows as dicts straight from one query
        # and written out by hand, the same fields SlotOut documents (tested to match).
        qs = TimeSlice.objects.values(*_SLOT_FIELDS)
        page = self.paginate_queryset(self.filter_queryset(qs))
        return self.get_paginated_response(slot_rows(page))


_SLOT_FIELDS = ("id", "schedule_id", "schedule__doctor_id", "schedule__doctor__name",
                "schedule__doctor__department__code", "schedule__date", "schedule__status",
                "schedule__fee_fen", "start", "end", "capacity", "booked")


def slot_rows(rows) -> list[dict]:
    """SlotOut's output for `.values(*_SLOT_FIELDS)` rows, without a serializer per row."""
    now = timezone.now()
    tz = timezone.get_current_timezone()
    released: dict = {}
    out = []
    for r in rows:
        day = r["schedule__date"]
        if day not in released:
            released[day] = release_moment(day).astimezone(tz)
        is_open = r["schedule__status"] == Schedule.Status.OPEN
        remaining = max(0, r["capacity"] - r["booked"]) if is_open else 0
        status = _SLOT_STATUS[slice_state(
            schedule_status=r["schedule__status"], day=day, start=r["start"],
            booked=r["booked"], capacity=r["capacity"], now=now, opens_at=released[day])]
        out.append({
            "id": r["id"], "schedule": r["schedule_id"], "doctor": r["schedule__doctor_id"],
            "doctor_name": r["schedule__doctor__name"],
            "department": r["schedule__doctor__department__code"], "date": day.isoformat(),
            "start": r["start"].astimezone(tz).isoformat(),
            "end": r["end"].astimezone(tz).isoformat(), "capacity": r["capacity"],
            "remaining": remaining, "fee_fen": r["schedule__fee_fen"], "status": status,
            "released_at": released[day].isoformat()})
    return out


# --------------------------------------------------------------------------- bookings


class BookingIn(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    patient = PatientIn()

    def validate_slot(self, value: int) -> int:
        # An id that names no slot of this hospital is a mistake in the request (400, like an
        # unknown department), not a sold-out place (409 slot_sold_out).
        if not TimeSlice.objects.filter(pk=value).exists():
            raise serializers.ValidationError(_("No slot of this hospital has this id."),
                                              code="does_not_exist")
        return value


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


def _own_bookings(request, hospital):
    return (Booking.objects.filter(pk__in=own_object_ids(partner=request.auth.partner,
                                                         hospital=hospital,
                                                         kind=PartnerRecord.Kind.BOOKING))
            .select_related("doctor__department", "slice", "family_member", "order"))


def _cashier_url(request, hospital, booking: Booking) -> str | None:
    """Ask the payment provider for the cashier page of a new hold (after commit)."""
    from payments import services as payments
    from portal.partners.api import hospital_base_url

    base = hospital_base_url(request, hospital)
    try:
        start = payments.payment_start(
            order=booking.order,
            notify_url=f"{base}/payments/notify/{booking.order.provider}/",
            return_url=f"{base}/payments/orders/{booking.order.out_trade_no}/return/")
    except Exception:  # provider down: the partner can still show the order number and amount
        log.warning("could not start payment of booking %s", booking.pk, exc_info=True)
        return None
    return start.cashier_url


BOOKING_ERRORS = errors(
    (409, "slot_sold_out", "Sorry, this time has just been fully booked."),
    (409, "not_yet_released", "Places for 2026-12-10 open at 2026-12-03 08:00."),
    (409, "slot_in_the_past", "This time has already passed."),
    (409, "schedule_stopped", "The doctor has stopped this clinic; please choose another time."),
    (409, "booking_limit_reached", "张伟 already has 3 active bookings here, the most allowed."),
    (409, "duplicate_booking", "张伟 already has a booking with this doctor on that day."),
    (409, "patient_banned", "Online booking for 张伟 is suspended until 2027-03-01: ..."),
    (422, "patient_mismatch",
     "This resident ID is registered under another name for this mobile number."),
    idempotent=True,
)


class BookingListView(PartnerListView):
    required_scopes = {"GET": "bookings:read", "POST": "bookings:write"}
    pagination_class = _cursor("-pk")
    serializer_class = BookingOut

    @extend_schema(
        operation_id="bookings_list", tags=["bookings"],
        summary=_("Bookings made by this partner"),
        responses={200: BookingOut(many=True), **errors()},
        examples=[OpenApiExample("own bookings", response_only=True,
                                 value=BOOKING_EXAMPLE)])
    def get(self, request, **kwargs):
        return self.list_response(_own_bookings(request, self.hospital), BookingOut)

    @extend_schema(
        operation_id="bookings_create", tags=["bookings"],
        summary=_("Book a slot for a patient (a hold awaiting payment)"),
        description=_("The patient is identified by name, resident ID and mobile; their platform "
                      "account and family member are found or created. A paid slot becomes a "
                      "hold until `payment.expires_at`: send the patient to "
                      "`payment.cashier_url`. A free slot is confirmed at once."),
        parameters=[IDEMPOTENCY_PARAM], request=BookingIn,
        responses={201: BookingOut, **BOOKING_ERRORS},
        examples=[OpenApiExample("book", request_only=True, value={
            "slot": 4471, "patient": {"name": "张伟", "id_number": "110101199003070011",
                                      "mobile": "13800138000"}}),
                  OpenApiExample("held", response_only=True, status_codes=["201"],
                                 value=BOOKING_EXAMPLE)])
    @idempotent
    def post(self, request, **kwargs):
        data = BookingIn(data=request.data)
        data.is_valid(raise_exception=True)
        patient = data.validated_data["patient"]
        booking = partner_services.booking_create_for_partner(
            partner=request.auth.partner, slice_id=data.validated_data["slot"],
            name=patient["name"], id_number=patient["id_number"], mobile=patient["mobile"])
        booking = _own_bookings(request, self.hospital).get(pk=booking.pk)
        cashier = _cashier_url(request, self.hospital, booking) if booking.order_id else None
        return Response(BookingOut(booking, context={"cashier_url": cashier}).data, status=201)


class BookingDetailView(PartnerAPIView):
    required_scopes = {"GET": "bookings:read"}

    @extend_schema(operation_id="bookings_retrieve", tags=["bookings"],
                   summary=_("One of this partner's bookings"),
                   responses={200: BookingOut, **errors()},
                   examples=[OpenApiExample("booking", response_only=True,
                                            value=BOOKING_EXAMPLE)])
    def get(self, request, pk: int, **kwargs):
        booking = _own_bookings(request, self.hospital).filter(pk=pk).first()
        if booking is None:
            raise exceptions.NotFound()
        return Response(BookingOut(booking).data)


class BookingCancelView(PartnerAPIView):
    required_scopes = {"POST": "bookings:write"}

    @extend_schema(
        operation_id="bookings_cancel", tags=["bookings"],
        summary=_("Cancel a booking (refunded automatically if paid)"),
        parameters=[IDEMPOTENCY_PARAM], request=CancelIn,
        responses={200: BookingOut, **errors(
            (409, "cancel_cutoff_passed",
             "Online cancellation closed at 2026-12-02 18:00; please contact the hospital."),
            (409, "not_cancellable", "This booking is no longer active."), idempotent=True)},
        examples=[OpenApiExample("cancel", request_only=True, value={"reason": "患者改期"}),
                  OpenApiExample("cancelled", response_only=True, value={
                      **BOOKING_EXAMPLE, "status": "cancelled",
                      "cancelled_at": "2026-12-01T10:05:00+08:00", "cancel_reason": "患者改期"})])
    @idempotent
    def post(self, request, pk: int, **kwargs):
        data = CancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        booking = _own_bookings(request, self.hospital).filter(pk=pk).first()
        if booking is None:
            raise exceptions.NotFound()
        booking_services.booking_cancel(booking=booking, actor=booking.account, source="api",
                                        reason=data.validated_data["reason"])
        booking = _own_bookings(request, self.hospital).get(pk=pk)
        return Response(BookingOut(booking).data)


urlpatterns = [
    path("departments/", DepartmentListView.as_view(), name="departments"),
    path("doctors/", DoctorListView.as_view(), name="doctors"),
    path("doctors/<int:pk>/", DoctorDetailView.as_view(), name="doctor"),
    path("schedules/", ScheduleListView.as_view(), name="schedules"),
    path("slots/", SlotListView.as_view(), name="slots"),
    path("bookings/", BookingListView.as_view(), name="bookings"),
    path("bookings/<int:pk>/", BookingDetailView.as_view(), name="booking"),
    path("bookings/<int:pk>/cancel/", BookingCancelView.as_view(), name="booking_cancel"),
]
