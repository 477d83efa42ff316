"""What staff read in the hospital admin: payment orders are 订单 (not 排序, "sort order"), and
the audit trail names actions, statuses and sources in words, in the staff's language."""

from __future__ import annotations

import re

from django.utils import translation

from payments.models import Order
from registration.models import Booking, Department, Doctor
from tests.helpers import host_client, make_staff
from tests.payments.test_callbacks import _paid_order


def test_admin_labels_order_means_payment_order_and_sort_order_stays_distinct():
    with translation.override("zh-hans"):
        assert str(Order._meta.verbose_name) == "订单"
        assert str(Booking._meta.get_field("order").verbose_name) == "订单"
        assert str(Department._meta.get_field("sort_order").verbose_name) == "排序"
        assert str(Doctor._meta.get_field("sort_order").verbose_name) == "排序"


def _audit_rows(page: str) -> list[list[str]]:
    body = page[page.index("操作记录"):]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    cells = [[re.sub(r"<[^>]+>|\s+", " ", c).strip()
              for c in re.findall(r'<td class="field-[^"]+">(.*?)</td>', row, re.S)] for row in rows]
    return [c for c in cells if c]


def test_admin_labels_order_page_and_audit_trail_in_words(sandbox, catcher, hospital_a, patient,
                                                          client_a):
    order = _paid_order(sandbox, catcher, hospital_a, patient, client_a)
    client = host_client("alpha.localhost", make_staff(hospital_a, "finance"))
    page = client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    assert "查看 订单" in page and "排序" not in page
    rows = _audit_rows(page)
    # action, from status, to status, source (columns after the time)
    assert ["已创建", "-", "待支付", "患者"] in [r[1:5] for r in rows]
    assert ["已支付", "待支付", "已支付", "支付渠道"] in [r[1:5] for r in rows]
    assert "原状态" in page and "新状态" in page
    assert not [r for r in rows if "payment_started" in r or "provider" in r]
    # Django's row caption (the event's code) is hidden by the audit trail's own style sheet
    assert 'class="module audit-trail' in page and "css/admin-audit.css" in page


def test_admin_labels_platform_hospital_page_in_chinese(hospital_a):
    from tests.helpers import PLATFORM_HOST, make_user

    client = host_client(PLATFORM_HOST, make_user(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/tenants/hospital/{hospital_a.pk}/change/").content.decode()
    assert "数据库模式" in page and "h_alpha" in page and "Schema name" not in page
    assert "主域名" in page and "Is primary" not in page and ">Domain<" not in page


def test_admin_labels_django_strings_missing_from_its_catalogue(hospital_a, admin_a):
    client = host_client("alpha.localhost", admin_a)
    add = client.get("/admin/registration/schedule/add/").content.decode()
    assert "- 请选择 -" in add and "Select an option" not in add
    listing = client.get("/admin/registration/schedule/").content.decode()
    assert "按日期筛选" in listing and "Filter by" not in listing


def test_admin_labels_booking_list_and_page_name_the_doctor_and_source(hospital_a, registrar_a):
    from registration.models import TimeSlice
    from registration.services import booking as svc
    from tests.helpers import in_schema
    from tests.registration.helpers import make_patient, make_session

    with in_schema(hospital_a):
        _, schedule = make_session(fee=0)
        make_session(name="王医生")  # a second doctor: the doctor filter shows from two
        user, member = make_patient("签到患者")
        booking = svc.booking_hold(slice_id=TimeSlice.objects.filter(schedule=schedule)
                                   .first().pk, family_member=member, account=user, source="web")
    client = host_client("alpha.localhost", registrar_a)
    listing = client.get("/admin/registration/booking/").content.decode()
    assert "以 医生" in listing and "以 doctor" not in listing
    assert "column-doctor_name" in listing
    page = client.get(f"/admin/registration/booking/{booking.pk}/change/").content.decode()
    assert "患者（网页）" in page and ">web<" not in page
    assert "Doctor:" not in page


def test_admin_labels_doctor_rank_is_zhicheng_and_waitlist_in_words(hospital_a, admin_a):
    from registration.models import TimeSlice
    from registration.services import booking as svc
    from registration.services import waitlist as waitlist_services
    from tests.helpers import in_schema
    from tests.registration.helpers import make_patient, make_session

    with in_schema(hospital_a):
        _, schedule = make_session(fee=0, capacity=1, slices=1, name="候补医生")
        u1, m1 = make_patient("先约")
        u2, m2 = make_patient("后补")
        svc.booking_hold(slice_id=TimeSlice.objects.get(schedule=schedule).pk,
                         family_member=m1, account=u1)
        waitlist_services.waitlist_join(schedule=schedule, family_member=m2, account=u2)
    client = host_client("alpha.localhost", admin_a)
    doctor_add = client.get("/admin/registration/doctor/add/").content.decode()
    assert "职称:" in doctor_add and "标题:" not in doctor_add
    waitlist = client.get("/admin/registration/waitlistentry/").content.decode()
    assert "候补中" in waitlist and "以 状态" in waitlist
    for english in ("以 status", ">Schedule<", ">Family member<", ">Created at<"):
        assert english not in waitlist


def test_admin_labels_payment_settings_list_in_chinese(hospital_a, admin_a):
    page = host_client("alpha.localhost", admin_a).get(
        "/admin/payments/paymentsettings/").content.decode()
    assert "column-changed_at" in page and "Updated at" not in page


def test_admin_labels_every_field_of_the_hospital_admin_in_chinese():
    """Every field staff can see in the hospital admin (column, filter, form label) is named in
    Chinese: a field left without a translated verbose_name showed as "ORDER", "Template",
    "Created at", "Provider refund id" or "以 status"."""
    from portal.admin_sites import hospital_admin_site

    allowed = {("notifications.WebhookEndpoint", "url")}  # "URL" is what staff call it
    untranslated = []
    with translation.override("zh-hans"):
        for model in hospital_admin_site._registry:
            for field in model._meta.concrete_fields:
                if field.name == "id" or (model._meta.label, field.name) in allowed:
                    continue
                if field.name == "schema_name":  # not shown (the platform admin shows it)
                    continue
                if not re.search(r"[\u4e00-\u9fff]", str(field.verbose_name)):
                    untranslated.append(f"{model._meta.label}.{field.name}: {field.verbose_name}")
    assert untranslated == []


def test_admin_labels_refund_list_and_page_in_chinese(hospital_a, finance_a, patient):
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import Refund
    from tests.helpers import in_schema

    with in_schema(hospital_a):
        order = Order.objects.create(out_trade_no="PLABELS0001", kind="registration",
                                     description="挂号", payer=patient, provider="sandbox",
                                     total_fen=2000, self_pay_fen=2000, refunded_fen=2000,
                                     status="refunded",
                                     expires_at=timezone.now() + timedelta(minutes=15))
        refund = Refund.objects.create(order=order, out_refund_no="RLABELS0001", amount_fen=2000,
                                       reason="已取消预约。", status="failed",
                                       failure_reason="渠道拒绝")
    client = host_client("alpha.localhost", finance_a)
    listing = client.get("/admin/payments/refund/").content.decode()
    assert "PLABELS0001" in listing
    headers = re.findall(r'<th scope="col"[^>]*>.*?<(?:a|span)[^>]*>([^<]+)<', listing, re.S)
    assert "订单" in headers and not [h for h in headers if re.fullmatch(r"[A-Za-z ]+", h)]
    page = client.get(f"/admin/payments/refund/{refund.pk}/change/").content.decode()
    assert "渠道退款单号" in page and "失败原因" in page
    assert "Provider refund id" not in page and "Failure reason" not in page


def test_admin_labels_welcome_names_the_staff_member_not_their_phone(hospital_a):
    from tests.helpers import make_staff

    staff = make_staff(hospital_a, "registrar", name="前台小李")
    page = host_client("alpha.localhost", staff).get("/admin/").content.decode()
    assert "前台小李" in page and staff.phone not in page
