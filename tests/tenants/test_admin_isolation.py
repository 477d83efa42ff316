"""Staff of hospital A never reach hospital B's admin or the platform admin; roles narrow it."""

import pytest

from portal.accounts.models import StaffMembership
from tests.helpers import PASSWORD, host_client, make_staff


def _is_admin_page(response) -> bool:
    return response.status_code == 200 and 'id="site-name"' in response.content.decode()


def test_admin_hospital_admin_of_a_enters_a(admin_a):
    assert _is_admin_page(host_client("alpha.localhost", admin_a).get("/admin/"))


def test_admin_hospital_admin_of_a_refused_at_b(admin_a):
    client = host_client("beta.localhost", admin_a)
    r = client.get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    r = client.get("/admin/registration/department/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_admin_login_form_at_b_refuses_staff_of_a(admin_a):
    client = host_client("beta.localhost")
    r = client.post("/admin/login/?next=/admin/", {"username": admin_a.phone,
                                                   "password": PASSWORD})
    assert r.status_code == 200  # the form again, with an error
    assert not r.wsgi_request.user.is_authenticated
    r = host_client("alpha.localhost").post("/admin/login/?next=/admin/",
                                            {"username": admin_a.phone, "password": PASSWORD})
    assert r.status_code == 302


def test_admin_platform_admin_refuses_hospital_staff(admin_a, operator):
    r = host_client("localhost", admin_a).get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    r = host_client("localhost").post("/admin/login/?next=/admin/", {
        "username": admin_a.phone, "password": PASSWORD})
    assert r.status_code == 200
    assert _is_admin_page(host_client("localhost", operator).get("/admin/"))


def test_admin_platform_operator_is_not_hospital_staff(operator):
    r = host_client("alpha.localhost", operator).get("/admin/")
    assert r.status_code == 302


def test_admin_inactive_membership_is_refused(hospital_a):
    user = make_staff(hospital_a, "admin")
    StaffMembership.objects.filter(user=user).update(is_active=False)
    assert host_client("alpha.localhost", user).get("/admin/").status_code == 302


@pytest.mark.parametrize(
    "role, allowed, refused",
    [
        ("admin", ["/admin/registration/department/", "/admin/tenants/hospitalsettings/",
                   "/admin/accounts/hospitalstaff/"], []),
        ("registrar", ["/admin/registration/department/", "/admin/registration/patientcard/"],
         ["/admin/tenants/hospitalsettings/", "/admin/accounts/hospitalstaff/"]),
        ("finance", [], ["/admin/registration/department/", "/admin/tenants/hospitalsettings/",
                         "/admin/accounts/hospitalstaff/"]),
        ("doctor", [], ["/admin/registration/department/", "/admin/accounts/hospitalstaff/"]),
    ],
)
def test_admin_role_sees_only_its_models(hospital_a, role, allowed, refused):
    client = host_client("alpha.localhost", make_staff(hospital_a, role))
    index = client.get("/admin/")
    assert _is_admin_page(index)
    for url in allowed:
        assert client.get(url).status_code == 200, url
        assert url in index.content.decode(), url
    for url in refused:
        assert client.get(url).status_code == 403, url
        assert url not in index.content.decode(), url


def test_admin_a_cannot_reach_b_rows_by_id(admin_a, hospital_b, admin_b):
    membership_b = StaffMembership.objects.get(user=admin_b)
    client = host_client("alpha.localhost", admin_a)
    r = client.get(f"/admin/accounts/hospitalstaff/{membership_b.pk}/change/")
    assert r.status_code == 302 and r["Location"] == "/admin/"  # "does not exist" redirect
    r = client.get(f"/admin/tenants/hospitalsettings/{hospital_b.pk}/change/")
    assert r.status_code == 302 and r["Location"] == "/admin/"
    listing = client.get("/admin/accounts/hospitalstaff/").content.decode()
    assert str(admin_b) not in listing


def test_admin_a_department_list_shows_only_a(admin_a, hospital_a, hospital_b, in_hospital):
    from registration.models import Department

    with in_hospital(hospital_b):
        Department.objects.create(code="beta-only", name="乙院专属科室")
    page = host_client("alpha.localhost", admin_a).get("/admin/registration/department/")
    assert page.status_code == 200
    assert "乙院专属科室" not in page.content.decode()


def test_admin_hospital_admin_edits_own_rules(admin_a, hospital_a):
    client = host_client("alpha.localhost", admin_a)
    url = f"/admin/tenants/hospitalsettings/{hospital_a.pk}/change/"
    form = client.get(url)
    assert form.status_code == 200
    data = {f: form.context["adminform"].form.initial.get(f) for f in
            form.context["adminform"].form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["one_booking_per_doctor_per_day"] = "on"
    data["identity_required"] = "on"
    data["hold_minutes"] = 20
    data["release_time"] = "08:00"
    r = client.post(url, data)
    assert r.status_code == 302, r.content.decode()[:2000]
    hospital_a.refresh_from_db()
    assert hospital_a.hold_minutes == 20
