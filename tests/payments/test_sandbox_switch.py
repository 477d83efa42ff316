"""The sandbox provider is a training mode, offered only where PAYMENTS_SANDBOX_ENABLED allows
it (production turns it off): there a hospital still set to the sandbox takes no money, a new
hospital starts with payments not configured, and staff cannot choose the sandbox."""

from __future__ import annotations

import pytest

from payments import services
from payments.models import Order, PaymentSettings
from portal.errors import DomainError
from registration.models import Booking
from registration.services import booking as booking_services
from tenants.services import hospital_provision
from tests.helpers import host_client, in_schema
from tests.registration.helpers import make_patient, make_session


@pytest.fixture
def sandbox_off(settings):
    settings.PAYMENTS_SANDBOX_ENABLED = False
    yield settings
    services.provider_name_cache.invalidate()


def test_sandbox_switch_off_refuses_payments_of_a_sandbox_hospital(hospital_a, sandbox_off):
    user, member = make_patient()
    with in_schema(hospital_a):
        assert PaymentSettings.objects.get().provider == "sandbox"
        _, schedule = make_session()
        first = schedule.slices.order_by("start").first()
        orders_before = Order.objects.count()
        with pytest.raises(DomainError) as refused:
            booking_services.booking_hold(slice_id=first.pk, family_member=member, account=user)
        assert refused.value.code == "payments_not_configured"
        assert not Booking.objects.filter(slice=first).exists()
        assert Order.objects.count() == orders_before
        with pytest.raises(DomainError):
            services.provider_for()


def test_sandbox_switch_on_takes_payments_of_a_sandbox_hospital(hospital_a, settings):
    settings.PAYMENTS_SANDBOX_ENABLED = True
    user, member = make_patient()
    with in_schema(hospital_a):
        _, schedule = make_session()
        first = schedule.slices.order_by("start").first()
        booking = booking_services.booking_hold(slice_id=first.pk, family_member=member, account=user)
        assert booking.order.provider == "sandbox"


def test_sandbox_switch_off_new_hospital_starts_without_a_provider(db, sandbox_off):
    hospital = hospital_provision(code="nopay", name="未开通支付医院", domain="nopay.localhost")
    with in_schema(hospital):
        row = PaymentSettings.objects.get()
        assert row.provider == "" and row.sandbox_api_key == ""
        with pytest.raises(DomainError) as refused:
            services.provider_for()
        assert refused.value.code == "payments_not_configured"


def test_sandbox_switch_off_admin_does_not_offer_the_sandbox(hospital_a, admin_a, sandbox_off):
    client = host_client("alpha.localhost")
    client.force_login(admin_a)
    page = client.get("/admin/payments/paymentsettings/1/change/").content.decode()
    assert 'value="wechatpay_v3"' in page
    assert 'value="sandbox"' not in page
    response = client.post("/admin/payments/paymentsettings/1/change/", {"provider": "sandbox"})
    assert response.status_code == 200  # the form again, with the error
    assert "sandbox" not in dict(response.context["adminform"].form.fields["provider"].choices)
    with in_schema(hospital_a):
        assert PaymentSettings.objects.get().provider == "sandbox"  # unchanged
