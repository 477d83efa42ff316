"""Partner API: clinic bills pushed by a hospital's HIS (scope bills:write), and their status.

A partner sees only the bills it created. Amounts are integer fen. Mounted with the other
resources by portal/partners/urls.py.
"""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
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
from registration.models import ClinicBill, ClinicBillItem, Department
from registration.services import bills


class ItemIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    item_class = serializers.ChoiceField(choices=ClinicBillItem.ItemClass.choices,
                                         default=ClinicBillItem.ItemClass.A)
    unit_price_fen = serializers.IntegerField(min_value=0, max_value=10**10)
    quantity = serializers.IntegerField(min_value=1, max_value=10**5, default=1)


class BillIn(serializers.Serializer):
    patient = PatientIn()
    department = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                       help_text="Department code.")
    doctor_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    items = ItemIn(many=True, allow_empty=False, max_length=200)


class ItemOut(serializers.ModelSerializer):
    class Meta:
        model = ClinicBillItem
        fields = ["name", "item_class", "unit_price_fen", "quantity", "amount_fen"]
        read_only_fields = fields  # always in the response: required in the schema


class BillOut(serializers.ModelSerializer):
    patient = PatientOut(source="patient_card.family_member")
    department = serializers.CharField(source="department.code", allow_null=True, default=None)
    items = ItemOut(many=True)
    self_pay_fen = serializers.SerializerMethodField()
    insurance_fen = serializers.SerializerMethodField()

    class Meta:
        model = ClinicBill
        fields = ["id", "bill_no", "status", "patient", "department", "doctor_name", "total_fen",
                  "insurance_fen", "self_pay_fen", "items", "created_at", "paid_at"]
        read_only_fields = fields  # always in the response: required in the schema

    def get_self_pay_fen(self, obj) -> int | None:
        return obj.order.self_pay_fen if obj.order_id else None

    def get_insurance_fen(self, obj) -> int | None:
        return obj.order.insurance_fen if obj.order_id else None


BILL_EXAMPLE = {
    "id": 52, "bill_no": "B261201100000AB12CD34", "status": "unpaid",
    "patient": {"name": "张伟", "id_number": "110101********0011", "mobile": "138****8000"},
    "department": "cardiology", "doctor_name": "王建国", "total_fen": 15800,
    "insurance_fen": None, "self_pay_fen": None,
    "items": [{"name": "血常规", "item_class": "A", "unit_price_fen": 2500, "quantity": 1,
               "amount_fen": 2500},
              {"name": "阿司匹林肠溶片", "item_class": "B", "unit_price_fen": 1330, "quantity": 10,
               "amount_fen": 13300}],
    "created_at": "2026-12-01T10:00:00+08:00", "paid_at": None}


def _own_bills(request, hospital):
    return (ClinicBill.objects.filter(pk__in=own_object_ids(partner=request.auth.partner,
                                                            hospital=hospital,
                                                            kind=PartnerRecord.Kind.BILL))
            .select_related("patient_card__family_member", "department", "order")
            .prefetch_related("items"))


class BillListView(PartnerListView):
    required_scopes = {"GET": "bills:write", "POST": "bills:write"}
    pagination_class = type("Cursor", (ApiCursorPagination,), {"ordering": "-pk"})
    serializer_class = BillOut

    @extend_schema(operation_id="bills_list", tags=["clinic bills"],
                   summary=_("Clinic bills created by this partner"),
                   responses={200: BillOut(many=True), **errors()},
                   examples=[OpenApiExample("bills", response_only=True, value=BILL_EXAMPLE)])
    def get(self, request, **kwargs):
        return self.list_response(_own_bills(request, self.hospital), BillOut)

    @extend_schema(
        operation_id="bills_create", tags=["clinic bills"],
        summary=_("Create a clinic bill with items (HIS)"),
        description=_("The patient sees it on the hospital site (Clinic bills) with the "
                      "insurance split and pays the self-paid part there."),
        parameters=[IDEMPOTENCY_PARAM], request=BillIn,
        responses={201: BillOut, **errors(
            (409, "bill_not_editable", "Item prices are whole fen and quantities at least 1."),
            (422, "patient_mismatch",
             "This resident ID is registered under another name for this mobile number."),
            idempotent=True)},
        examples=[OpenApiExample("bill", request_only=True, value={
            "patient": {"name": "张伟", "id_number": "110101199003070011",
                        "mobile": "13800138000"},
            "department": "cardiology", "doctor_name": "王建国",
            "items": [{"name": "血常规", "item_class": "A", "unit_price_fen": 2500, "quantity": 1},
                      {"name": "阿司匹林肠溶片", "item_class": "B", "unit_price_fen": 1330,
                       "quantity": 10}]}),
            OpenApiExample("created", response_only=True, status_codes=["201"],
                           value=BILL_EXAMPLE)])
    @idempotent
    def post(self, request, **kwargs):
        data = BillIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        department = None
        if v.get("department"):
            department = Department.objects.filter(code=v["department"]).first()
            if department is None:
                raise serializers.ValidationError({"department": [_("Unknown department.")]})
        bill = bills.clinic_bill_create_for_partner(
            partner=request.auth.partner, name=v["patient"]["name"],
            id_number=v["patient"]["id_number"], mobile=v["patient"]["mobile"],
            items=[dict(i) for i in v["items"]], department=department,
            doctor_name=v.get("doctor_name", ""))
        return Response(BillOut(_own_bills(request, self.hospital).get(pk=bill.pk)).data,
                        status=201)


class BillDetailView(PartnerAPIView):
    required_scopes = {"GET": "bills:write"}

    @extend_schema(operation_id="bills_retrieve", tags=["clinic bills"],
                   summary=_("A clinic bill and its payment status"),
                   responses={200: BillOut, **errors()},
                   examples=[OpenApiExample("bill", response_only=True, value=BILL_EXAMPLE)])
    def get(self, request, bill_no: str, **kwargs):
        bill = _own_bills(request, self.hospital).filter(bill_no=bill_no).first()
        if bill is None:
            raise exceptions.NotFound()
        return Response(BillOut(bill).data)


urlpatterns = [
    path("bills/", BillListView.as_view(), name="bills"),
    path("bills/<str:bill_no>/", BillDetailView.as_view(), name="bill"),
]
