"""Partner API: a hospital's HIS pushes reports and records for a patient (scope reports:write).

Write-only on purpose: reading records goes through the records gate (`record_access`) for the
patient's own account; a partner gets back only what it pushed, in the creating response.
The patient is named by this hospital's medical record number (what a HIS knows) or, like a
booking, by name + resident ID + mobile. `external_id` makes the push idempotent per partner.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from portal.partners.api import IDEMPOTENCY_PARAM, PartnerAPIView, errors
from portal.partners.idempotency import idempotent
from portal.partners.models import PartnerRecord
from portal.partners.serializers import PatientOut
from portal.partners.services import patient_resolve, record_object
from registration.models import Department

from .models import LabItem, Record
from .services import records

PUSHABLE_KINDS = [Record.Kind.LAB_REPORT, Record.Kind.IMAGING_REPORT, Record.Kind.VISIT_SUMMARY]


class ReportPatientIn(serializers.Serializer):
    medical_record_number = serializers.CharField(max_length=20, required=False)
    name = serializers.CharField(max_length=50, required=False)
    id_number = serializers.CharField(max_length=18, required=False)
    mobile = serializers.CharField(max_length=20, required=False)

    def validate(self, data):
        if data.get("medical_record_number"):
            return data
        if not all(data.get(f) for f in ("name", "id_number", "mobile")):
            raise serializers.ValidationError(
                _("Give the medical record number, or name, resident ID and mobile."))
        return data


class LabItemIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    value = serializers.CharField(max_length=50)
    unit = serializers.CharField(max_length=30, required=False, allow_blank=True)
    reference_range = serializers.CharField(max_length=50, required=False, allow_blank=True)
    flag = serializers.ChoiceField(choices=["", "H", "L", "A"], required=False)
    code = serializers.CharField(max_length=30, required=False, allow_blank=True)


class ReportIn(serializers.Serializer):
    patient = ReportPatientIn()
    kind = serializers.ChoiceField(choices=[(k.value, k.label) for k in PUSHABLE_KINDS])
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    conclusion = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    department = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                       help_text="Department code.")
    doctor_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    issued_at = serializers.DateTimeField(required=False)
    items = LabItemIn(many=True, required=False, max_length=500)
    external_id = serializers.CharField(
        max_length=40, required=False,
        help_text="Your id of this report: pushing the same id again returns the first one.")


class LabItemOut(serializers.ModelSerializer):
    class Meta:
        model = LabItem
        fields = ["name", "code", "value", "unit", "reference_range", "flag"]
        read_only_fields = fields  # always in the response: required in the schema


class ReportOut(serializers.ModelSerializer):
    patient = PatientOut(source="patient_card.family_member")
    medical_record_number = serializers.CharField(source="patient_card.medical_record_number")
    department = serializers.CharField(source="department.code", allow_null=True, default=None)
    items = LabItemOut(many=True)
    external_id = serializers.SerializerMethodField()

    class Meta:
        model = Record
        fields = ["id", "kind", "title", "patient", "medical_record_number", "department",
                  "doctor_name", "conclusion", "issued_at", "items", "external_id",
                  "created_at"]
        read_only_fields = fields  # always in the response: required in the schema

    def get_external_id(self, obj) -> str | None:
        return obj.external_id.split(":", 1)[1] if obj.external_id else None


REPORT_EXAMPLE = {
    "id": 31, "kind": "lab_report", "title": "血常规",
    "patient": {"name": "张伟", "id_number": "110101********0011", "mobile": "138****8000"},
    "medical_record_number": "2026000123", "department": "cardiology", "doctor_name": "王建国",
    "conclusion": "", "issued_at": "2026-12-01T10:00:00+08:00",
    "items": [{"name": "白细胞计数", "code": "WBC", "value": "11.2", "unit": "10^9/L",
               "reference_range": "3.5-9.5", "flag": "H"}],
    "external_id": "LIS-20261201-0042", "created_at": "2026-12-01T10:00:01+08:00"}


class ReportCreateView(PartnerAPIView):
    required_scopes = {"POST": "reports:write"}

    @extend_schema(
        operation_id="reports_create", tags=["reports"],
        summary=_("Push a report or record for a patient (HIS)"),
        description=_("The patient is told and reads it on the hospital site (My records). "
                      "Lab result flags left empty are worked out from the reference range."),
        parameters=[IDEMPOTENCY_PARAM], request=ReportIn,
        responses={201: ReportOut, 200: ReportOut, **errors(
            (422, "invalid_report", "Only lab reports have result items."),
            (422, "unknown_patient", "No patient card has this number."), idempotent=True)},
        examples=[OpenApiExample("lab report", request_only=True, value={
            "patient": {"medical_record_number": "2026000123"}, "kind": "lab_report",
            "title": "血常规", "department": "cardiology", "doctor_name": "王建国",
            "items": [{"name": "白细胞计数", "code": "WBC", "value": "11.2", "unit": "10^9/L",
                       "reference_range": "3.5-9.5"}],
            "external_id": "LIS-20261201-0042"}),
            OpenApiExample("pushed", response_only=True, status_codes=["201", "200"],
                           value=REPORT_EXAMPLE)])
    @idempotent
    def post(self, request, **kwargs):
        data = ReportIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        partner = request.auth.partner
        department = None
        if v.get("department"):
            department = Department.objects.filter(code=v["department"]).first()
            if department is None:
                raise serializers.ValidationError({"department": [_("Unknown department.")]})
        # Namespaced per partner: one partner's ids never find another's reports.
        external_id = f"p{partner.pk}:{v['external_id']}" if v.get("external_id") else None
        existed = bool(external_id) and Record.objects.filter(external_id=external_id).exists()
        with transaction.atomic():
            member = None
            if not v["patient"].get("medical_record_number"):
                _account, member = patient_resolve(name=v["patient"]["name"],
                                                   id_number=v["patient"]["id_number"],
                                                   mobile=v["patient"]["mobile"])
            record = records.report_create(
                kind=v["kind"], title=v["title"], family_member=member,
                medical_record_number=v["patient"].get("medical_record_number"),
                items=[dict(i) for i in v.get("items", [])], body=v.get("body", ""),
                conclusion=v.get("conclusion", ""), department=department,
                doctor_name=v.get("doctor_name", ""), issued_at=v.get("issued_at"),
                source="api", external_id=external_id)
            record_object(partner=partner, hospital=connection.tenant,
                          kind=PartnerRecord.Kind.REPORT, object_id=record.pk)
        record = (Record.objects.select_related("patient_card__family_member", "department")
                  .prefetch_related("items").get(pk=record.pk))
        return Response(ReportOut(record).data, status=200 if existed else 201)


urlpatterns = [
    path("reports/", ReportCreateView.as_view(), name="reports"),
]
