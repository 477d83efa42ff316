"""Consult pages through the hospital's host: triage, the conversation, the workbench,
isolation by id, and the quality figures in admin."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from consult import selectors
from consult.models import Consultation, TriageResult
from consult.services import consultations, records
from tests.consult.helpers import BENIGN, make_online_doctor, make_patient, pay, start_consultation
from tests.helpers import host_client, in_schema, make_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_consult_home_lists_online_doctors_and_links_from_header(hospital_a, alpha_doctor, client_a):
    doctor, _ = alpha_doctor
    user, _member = make_patient("首页")
    client_a.force_login(user)
    home = client_a.get("/").content.decode()
    assert 'href="/consult/"' in home and 'href="/records/"' in home
    page = client_a.get("/consult/")
    assert page.status_code == 200 and doctor.name in page.content.decode()


def test_consult_red_flag_answers_show_emergency_advice_and_charge_nothing(hospital_a, alpha_doctor,
                                                                          client_a):
    doctor, _ = alpha_doctor
    user, member = make_patient("急症")
    client_a.force_login(user)
    response = client_a.post(f"/consult/start/?doctor={doctor.pk}", {
        "doctor": doctor.pk, "member": member.pk, "symptoms": ["chest_pain", "short_of_breath"],
        "duration": "1", "duration_unit": "h", "pregnant": "na"})
    assert response.status_code == 302
    page = client_a.get(response["Location"]).content.decode()
    assert 'data-outcome="emergency_now"' in page and "tel:120" in page
    assert 'id="consult-create"' not in page
    with in_schema(hospital_a):
        assert not Consultation.objects.filter(account=user).exists()


def test_consult_missing_answers_show_field_errors(hospital_a, alpha_doctor, client_a):
    doctor, _ = alpha_doctor
    user, member = make_patient("漏答")
    client_a.force_login(user)
    response = client_a.post(f"/consult/start/?doctor={doctor.pk}",
                             {"doctor": doctor.pk, "member": member.pk})
    assert response.status_code == 400
    with in_schema(hospital_a):
        assert not TriageResult.objects.filter(account=user).exists()


def test_consult_benign_path_creates_consultation_awaiting_payment(hospital_a, alpha_doctor, client_a):
    doctor, _ = alpha_doctor
    user, member = make_patient("常规")
    client_a.force_login(user)
    response = client_a.post(f"/consult/start/?doctor={doctor.pk}", {
        "doctor": doctor.pk, "member": member.pk, **BENIGN})
    triage_url = response["Location"]
    assert 'data-outcome="online_ok"' in client_a.get(triage_url).content.decode()
    response = client_a.post(triage_url, {"question": "咳嗽两天"})
    assert response.status_code == 302
    page = client_a.get(response["Location"]).content.decode()
    assert 'data-status="awaiting_payment"' in page and 'id="consult-pay"' in page
    assert "咳嗽两天" in page


def test_consultation_of_another_account_is_404_everywhere(hospital_a, alpha_doctor, other_patient, client_a):
    doctor, _ = alpha_doctor
    user, member = make_patient("我的问诊")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        msg = consultations.message_send(consultation=c, author=user, body="私密")
        triage_id = c.triage_id
    client_a.force_login(other_patient)
    for url in (f"/consult/{c.pk}/", f"/consult/{c.pk}/messages/", f"/consult/triage/{triage_id}/",
                f"/consult/images/{msg.pk}/"):
        assert client_a.get(url).status_code == 404, url
    for url in (f"/consult/{c.pk}/send/", f"/consult/{c.pk}/cancel/", f"/consult/{c.pk}/rate/",
                f"/consult/{c.pk}/close/"):
        assert client_a.post(url, {"body": "x", "rating": "1", "summary": "x"}).status_code == 404, url
    with in_schema(hospital_a):
        assert Consultation.objects.get(pk=c.pk).status == "waiting"


def test_consultation_ids_do_not_cross_hospitals(hospital_a, hospital_b, alpha_doctor, client_b):
    doctor, _ = alpha_doctor
    user, member = make_patient("跨院问诊")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
    client_b.force_login(user)  # even the owner: at B this id is not theirs
    response = client_b.get(f"/consult/{c.pk}/")
    assert response.status_code == 404 or "咳嗽两天" not in response.content.decode()


def test_conversation_polling_returns_new_messages_and_status(hospital_a, alpha_doctor, client_a,
                                                              settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    doctor, doctor_user = alpha_doctor
    user, member = make_patient("轮询")
    with in_schema(hospital_a):
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
    client_a.force_login(user)
    first = client_a.get(f"/consult/{c.pk}/messages/?after=0").json()
    assert first["status"] == "waiting" and first["html"].strip() == ""
    response = client_a.post(f"/consult/{c.pk}/send/", {
        "body": "附上照片", "image": SimpleUploadedFile("a.png", PNG, "image/png")},
        HTTP_X_REQUESTED_WITH="fetch")
    assert response.json() == {"ok": True}
    bad = client_a.post(f"/consult/{c.pk}/send/", {
        "image": SimpleUploadedFile("a.png", b"MZ\x90\x00 not an image", "image/png")},
        HTTP_X_REQUESTED_WITH="fetch")
    assert bad.status_code == 409 and bad.json()["code"] == "attachment_rejected"
    doctor_client = host_client("alpha.localhost", doctor_user)
    doctor_page = doctor_client.get(f"/consult/{c.pk}/").content.decode()
    assert 'id="triage-answers"' in doctor_page and "附上照片" in doctor_page
    doctor_client.post(f"/consult/{c.pk}/send/", {"body": "看到了，问题不大"})
    update = client_a.get(f"/consult/{c.pk}/messages/?after={first['last']}").json()
    assert "看到了，问题不大" in update["html"] and update["status"] == "active"
    image_id = int(update["html"].split('/consult/images/')[1].split('/')[0])
    image = client_a.get(f"/consult/images/{image_id}/")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert doctor_client.get(f"/consult/images/{image_id}/").status_code == 200


def test_workbench_for_doctors_only_waiting_by_deadline_and_todays_patients(hospital_a, client_a):
    from registration.models import Schedule, TimeSlice
    from registration.services import booking as booking_svc
    from tests.registration.helpers import make_patient as make_booking_patient

    user1, member1 = make_patient("先到期")
    user2, member2 = make_patient("后到期")
    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a)
        late = pay(start_consultation(doctor=doctor, user=user1, member=member1))
        early = pay(start_consultation(doctor=doctor, user=user2, member=member2))
        Consultation.objects.filter(pk=early.pk).update(deadline_at=timezone.now() + timedelta(hours=1))
        today = timezone.localdate()
        schedule = Schedule.objects.create(doctor=doctor, date=today, period="pm", fee_fen=0)
        start = timezone.now() + timedelta(hours=1)
        TimeSlice.objects.create(schedule=schedule, start=start, end=start + timedelta(minutes=30),
                                 capacity=3)
        booker, booked_member = make_booking_patient("今日患者")
        booking = booking_svc.booking_hold(slice_id=TimeSlice.objects.get(schedule=schedule).pk,
                                           family_member=booked_member, account=booker)
        booking_svc.booking_check_in(booking=booking, actor=doctor_user)
    page = host_client("alpha.localhost", doctor_user).get("/workbench/").content.decode()
    assert page.index(f"/consult/{early.pk}/") < page.index(f"/consult/{late.pk}/")
    assert "今日患者" in page and "已签到" in page  # checked in
    outsider = make_user(name="非医生")
    assert host_client("alpha.localhost", outsider).get("/workbench/").status_code == 404


def test_admin_shows_quality_per_doctor_and_department(hospital_a, admin_a):
    user, member = make_patient("质量")
    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a, name="质量医生")
        c = pay(start_consultation(doctor=doctor, user=user, member=member))
        Consultation.objects.filter(pk=c.pk).update(paid_at=timezone.now() - timedelta(minutes=30))
        consultations.message_send(consultation=c, author=doctor_user, body="好")
        consultations.consultation_close(consultation=c, by=doctor_user, summary="好")
        consultations.consultation_rate(consultation=c, by=user, rating=4)
        rows = {r["who"].name: r for r in selectors.quality("doctor")}
        assert rows["质量医生"]["n"] == 1 and rows["质量医生"]["rating"] == 4
        assert 29 < rows["质量医生"]["p50"] < 31 and rows["质量医生"]["timeout_rate"] == 0
    page = host_client("alpha.localhost", admin_a).get("/admin/consult/consultation/")
    assert page.status_code == 200 and "质量医生" in page.content.decode()
    # A doctor-role account also works in the consult admin.
    assert host_client("alpha.localhost", doctor_user).get("/admin/consult/consultation/").status_code == 200


def test_workbench_doctor_checks_in_own_patients_only(hospital_a):
    from registration.models import Booking, Schedule, TimeSlice
    from registration.services import booking as booking_svc
    from tests.registration.helpers import make_patient as make_booking_patient

    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a)
        other_doctor, other_user = make_online_doctor(hospital_a)
        schedule = Schedule.objects.create(doctor=doctor, date=timezone.localdate(), period="pm",
                                           fee_fen=0)
        start = timezone.now() + timedelta(hours=1)
        slice_ = TimeSlice.objects.create(schedule=schedule, start=start,
                                          end=start + timedelta(minutes=30), capacity=3)
        booker, member = make_booking_patient("待签到")
        booking = booking_svc.booking_hold(slice_id=slice_.pk, family_member=member, account=booker)
    url = f"/workbench/bookings/{booking.pk}/check-in/"
    assert host_client("alpha.localhost", other_user).post(url).status_code == 404
    page = host_client("alpha.localhost", doctor_user)
    assert f'id="check-in-{booking.pk}"' in page.get("/workbench/").content.decode()
    assert page.post(url).status_code == 302
    with in_schema(hospital_a):
        assert Booking.objects.get(pk=booking.pk).status == "checked_in"


def test_consult_visit_in_person_offers_booking_not_payment(hospital_a, alpha_doctor, client_a):
    doctor, _ = alpha_doctor
    user, member = make_patient("面诊")
    client_a.force_login(user)
    response = client_a.post(f"/consult/start/?doctor={doctor.pk}", {
        "doctor": doctor.pk, "member": member.pk, "symptoms": ["fever"], "temperature": "38.5",
        "duration": "5", "duration_unit": "d", "pregnant": "na"})
    page = client_a.get(response["Location"]).content.decode()
    assert 'data-outcome="visit_in_person"' in page and 'id="consult-create"' not in page
    assert "/departments/" in page  # where to book


def test_records_list_and_workbench_queries_do_not_grow_with_data(hospital_a, client_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user, member = make_patient("多份报告")
    with in_schema(hospital_a):
        doctor, doctor_user = make_online_doctor(hospital_a)
    client_a.force_login(user)
    doctor_client = host_client("alpha.localhost", doctor_user)

    def counts():
        with CaptureQueriesContext(connection) as records:
            assert client_a.get("/records/").status_code == 200
        with CaptureQueriesContext(connection) as bench:
            assert doctor_client.get("/workbench/").status_code == 200
        return len(records), len(bench)

    def add(n):
        with in_schema(hospital_a):
            for i in range(n):
                records.report_create(kind="visit_summary", title=f"门诊 {i}", family_member=member)
                other_user, other_member = make_patient(f"候诊{i}")
                pay(start_consultation(doctor=doctor, user=other_user, member=other_member))

    counts()  # warm up: the host → hospital lookup is cached per process after the first request
    add(2)
    few = counts()
    add(6)
    assert counts() == few


def test_admin_quality_counts_consultations_paid_in_the_chosen_period(hospital_a, admin_a):
    """Paid 3, 20, 60 and 200 days ago: 7 days sees the first, 30 days (the default) the first
    two, 90 days three, all time four; the page says which period, in a constant number of
    queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    # (days ago, minutes to the first response or None, status, rating)
    cases = [(3, 10, "closed", 5), (20, 50, "closed", 3), (60, None, "refunded", None),
             (200, 100, "closed", 1)]
    with in_schema(hospital_a):
        doctor, _doctor_user = make_online_doctor(hospital_a, name="周期医生")
        for days, minutes, status, rating in cases:
            user, member = make_patient(f"周期{days}")
            c = pay(start_consultation(doctor=doctor, user=user, member=member))
            paid_at = now - timedelta(days=days)
            Consultation.objects.filter(pk=c.pk).update(
                paid_at=paid_at, status=status, rating=rating,
                first_response_at=paid_at + timedelta(minutes=minutes) if minutes else None)

        def row(since):
            return {r["who"].name: r for r in selectors.quality("doctor", since=since)}.get("周期医生")

        week = row(now - timedelta(days=7))
        assert (week["n"], week["p50"], week["p90"], week["timeout_rate"], week["rating"],
                week["ratings"]) == (1, 10, 10, 0, 5, 1)
        month = row(now - timedelta(days=30))
        assert (month["n"], month["p50"], month["timeout_rate"], month["rating"],
                month["ratings"]) == (2, 30, 0, 4, 2)
        assert abs(month["p90"] - 46) < 1e-6  # 10 + 0.9 * (50 - 10)
        quarter = row(now - timedelta(days=90))
        assert (quarter["n"], quarter["p50"], quarter["rating"]) == (3, 30, 4)
        assert abs(quarter["timeout_rate"] - 1 / 3) < 1e-9
        ever = row(None)
        assert (ever["n"], ever["p50"], ever["timeout_rate"], ever["ratings"]) == (4, 50, 0.25, 3)
        assert abs(ever["rating"] - 3) < 1e-9
        assert row(now - timedelta(days=1)) is None
        department = {r["who"].code: r for r in selectors.quality(
            "department", since=now - timedelta(days=30))}["cardiology"]
        assert department["n"] >= 2

    client = host_client("alpha.localhost", admin_a)

    def page(query=""):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/admin/consult/consultation/" + query)
        assert response.status_code == 200
        html = response.content.decode()
        mine = html.split("周期医生</td>", 1)[1].split("</tr>", 1)[0]
        return html, mine, len(queries)

    page()  # warm: the first request of a client reads a little more (session, caches)
    html, mine, default_queries = page()
    assert '<strong data-period="30">' in html  # the default, stated
    since = timezone.localtime(now - timedelta(days=30)).strftime("%Y-%m-%d")
    assert since in html.split('id="quality-period"', 1)[1].split("</p>", 1)[0]
    assert mine.startswith("<td>2</td><td>30.0</td><td>46.0</td><td>0%</td><td>4.00</td>")
    html, mine, week_queries = page("?quality_period=7")
    assert '<strong data-period="7">' in html
    assert mine.startswith("<td>1</td><td>10.0</td><td>10.0</td><td>0%</td><td>5.00</td>")
    html, mine, all_queries = page("?quality_period=all&status=closed")
    assert '<strong data-period="all">' in html and "?e=1" not in html
    assert mine.startswith("<td>4</td><td>50.0</td>") and "<td>25%</td>" in mine
    # the list's own filter still applies beside the period, and the period links keep it
    assert 'href="?status=closed&amp;quality_period=7"' in html
    _html, _mine, quarter_queries = page("?quality_period=90")
    assert default_queries == week_queries == quarter_queries
    assert all_queries <= default_queries + 1  # status filter: no extra query per row
    # An unknown period falls back to the default.
    assert '<strong data-period="30">' in page("?quality_period=365")[0]


def test_consult_page_shows_answers_in_form_order_and_duration_as_entered(hospital_a, alpha_doctor,
                                                                          client_a):
    """"2 days" read back as "48.0 小时", and the answers came in jsonb's key order (duration
    before symptoms) instead of the form's."""
    import re

    doctor, doctor_user = alpha_doctor
    user, member = make_patient("时长")
    with in_schema(hospital_a):
        c = start_consultation(doctor=doctor, user=user, member=member, answers={
            **BENIGN, "temperature": "39", "duration": "2", "duration_unit": "d"})
        weeks = start_consultation(doctor=doctor, user=user, member=member, answers={
            **BENIGN, "duration": "3", "duration_unit": "w"})
        hours = start_consultation(doctor=doctor, user=user, member=member, answers={
            **BENIGN, "duration": "30", "duration_unit": "h"})
    client_a.force_login(user)

    def answers(consultation) -> list[str]:
        page = client_a.get(f"/consult/{consultation.pk}/").content.decode()
        section = page[page.index('id="triage-answers"'):]
        section = section[:section.index("</dl>")]
        return [re.sub(r"\s+", " ", d).strip() for d in re.findall(r"<dd[^>]*>(.*?)</dd>", section, re.S)]

    shown = answers(c)
    assert shown[1:5] == ["咳嗽, 咽痛", "39 ℃", "2 天", "不适用"]
    assert "48.0" not in " ".join(shown)
    assert answers(weeks)[3] == "3 周"
    assert answers(hours)[3] == "30 小时"


def test_consult_order_description_is_in_the_hospitals_language(hospital_a, alpha_doctor):
    from django.utils import translation

    doctor, _ = alpha_doctor
    user, member = make_patient("英文界面")
    with in_schema(hospital_a), translation.override("en"):
        c = start_consultation(doctor=doctor, user=user, member=member)
        assert c.order.description == f"线上问诊：{doctor.name}"
