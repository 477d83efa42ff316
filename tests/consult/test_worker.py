"""The response deadline job in a real Celery worker: a consultation nobody answered in time is
timed out, refunded at the provider and the patient is told."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consult.models import Consultation
from payments.models import Order, Refund
from portal.notifications.models import InboxMessage
from portal.notifications.services import outbox_deliver_now
from tests.consult.helpers import make_online_doctor, make_patient, pay, refund_callback, start_consultation
from tests.helpers import ROOT, stop_process, subprocess_env, wait_for

pytestmark = [pytest.mark.worker]

# The worker of this module listens on its own queue, so a worker started by other tests
# (with another provider URL) never takes these tasks.
QUEUE = "consult-worker-test"


@pytest.fixture(scope="module")
def consult_worker(django_db_setup, live_sandbox, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("consult-worker") / "worker.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-l", "info", "-Q", QUEUE,
         "--concurrency", "1", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=subprocess_env(SANDBOX_PAY_URL=live_sandbox), stdout=log,
        stderr=subprocess.STDOUT)
    wait_for(lambda: b" ready." in log_path.read_bytes(), 60, "consult worker", proc)
    yield proc
    stop_process(proc)


def _wait(check, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_worker_times_out_late_consultation_refunds_and_tells_patient(
        committed_hospital_a, consult_worker, live_sandbox, settings):
    from consult.tasks import consultations_timeout_due
    from payments import services as pay_svc
    from tests.payments.helpers import sandbox_hook

    settings.SANDBOX_PAY_URL = live_sandbox
    alpha = committed_hospital_a
    user, member = make_patient("无人应答")
    connection.set_tenant(alpha)
    doctor, _ = make_online_doctor(alpha, fee=2500)
    c = start_consultation(doctor=doctor, user=user, member=member)
    # The patient pays at the provider (its own process), then the callback is applied.
    pay_svc.provider_for().create_payment(pay_svc.PaymentRequest(
        out_trade_no=c.order.out_trade_no, amount_fen=2500, description="consult",
        notify_url="http://127.0.0.1:9/", return_url="",
        expires_at=timezone.now() + timedelta(hours=1)))
    sandbox_hook(type("S", (), {"base_url": live_sandbox}), "/_test/pay",
                 {"mchid": "sbx_alpha", "out_trade_no": c.order.out_trade_no, "deliver": False})
    c = pay(c)
    assert c.status == "waiting"
    Consultation.objects.filter(pk=c.pk).update(deadline_at=timezone.now() - timedelta(seconds=5))

    consultations_timeout_due.apply_async(queue=QUEUE)  # what beat sends every minute
    assert _wait(lambda: Refund.objects.filter(order_id=c.order_id)
                 .exclude(provider_refund_id="").exists()), "the worker did not refund"
    assert Consultation.objects.get(pk=c.pk).status == "timed_out"
    refund = Refund.objects.get(order_id=c.order_id)
    assert refund.amount_fen == 2500

    # The provider confirms the refund; the next run marks the consultation refunded.
    refund_callback(c.order)
    assert Order.objects.get(pk=c.order_id).status == Order.Status.REFUNDED
    consultations_timeout_due.apply_async(queue=QUEUE)
    assert _wait(lambda: Consultation.objects.get(pk=c.pk).status == "refunded")

    connection.set_schema_to_public()
    outbox_deliver_now()
    message = InboxMessage.objects.get(user=user, kind="consult_timed_out")
    assert doctor.name in message.body and message.link == f"/consult/{c.pk}/"
