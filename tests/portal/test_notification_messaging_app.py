"""The messaging-app channel (WeChat-like template messages) against the local fake over real
HTTP: binding through the app's web OAuth, a real worker on a real Redis, token refresh,
permanent and transient errors, preferences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from django.core import signing

from portal.accounts.models import MessagingAppBinding
from portal.accounts.services import (
    MessagingAppOpenidTaken,
    messaging_app_bind,
    messaging_app_unbind,
)
from portal.celery import WORKER_HEARTBEAT_KEY
from portal.dev.fake_messaging_app import FakeMessagingApp, openid_for
from portal.notifications import messaging_app
from portal.notifications.channels import channel_preference_set, channel_preferences
from portal.notifications.models import Delivery, InboxMessage
from portal.notifications.services import _channels_for, chunk_deliver, notify
from tests.helpers import (
    ROOT,
    free_port,
    host_client,
    in_schema,
    make_user,
    stop_process,
    subprocess_env,
)

APPID = "wxfakeappid00dev"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get_no_redirect(url: str):
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:  # a 302 surfaces as an HTTPError here
        return exc


@pytest.fixture
def fake_app(settings):
    """The fake messaging app over HTTP, and settings pointing at it (this process)."""
    app = FakeMessagingApp(appid=APPID).start()
    settings.MESSAGING_APP_URL = app.url
    settings.MESSAGING_APP_OAUTH_URL = ""
    settings.MESSAGING_APP_APPID = APPID
    settings.MESSAGING_APP_SECRET = app.secret
    try:
        yield app
    finally:
        app.stop()


def _bind_through_the_app(client, app, name: str) -> str:
    """Press Bind, let the fake app's user `name` allow it; return the callback URL."""
    response = client.post("/inbox/preferences/messaging-app/bind/")
    assert response.status_code == 302
    authorize = response["Location"]
    assert authorize.startswith(f"{app.url}/connect/oauth2/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["appid"] == [APPID] and query["scope"] == ["snsapi_base"]
    app.login_as = name
    answer = _get_no_redirect(authorize)
    assert answer.status == 302
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/inbox/preferences/messaging-app/callback/"
    assert parse_qs(back.query)["state"] == query["state"]
    return f"{back.path}?{back.query}"


# --------------------------------------------------------------------------- binding


@pytest.mark.parametrize("client_fixture", ["platform", "hospital"])
def test_messaging_app_binding_flow_and_replay(db, fake_app, client_fixture):
    host = "localhost" if client_fixture == "platform" else "alpha.localhost"
    user = make_user(name="绑定人")
    client = host_client(host, user)
    page = client.get("/inbox/preferences/").content.decode()
    assert 'name="msgapp"' in page and "/messaging-app/bind/" in page

    callback = _bind_through_the_app(client, fake_app, f"微信用户-{client_fixture}")
    response = client.get(callback, follow=True)
    openid = openid_for(APPID, f"微信用户-{client_fixture}")
    binding = MessagingAppBinding.objects.get(user=user)
    assert (binding.app_id, binding.openid) == (APPID, openid)
    page = response.content.decode()
    assert "/messaging-app/unbind/" in page and binding.masked_openid in page
    assert openid not in page  # shown masked

    # Unbind, then replay the same callback: the state was used, nothing is bound again.
    client.post("/inbox/preferences/messaging-app/unbind/")
    assert not MessagingAppBinding.objects.filter(user=user).exists()
    response = client.get(callback, follow=True)
    assert not MessagingAppBinding.objects.filter(user=user).exists()
    assert "not valid any more" in response.content.decode() or "不再有效" in \
        response.content.decode()


def test_messaging_app_binding_rejects_forged_and_foreign_states(db, fake_app):
    victim = make_user(name="受害人")
    attacker = make_user(name="攻击者")
    victim_client = host_client("localhost", victim)
    attacker_client = host_client("localhost", attacker)

    # The attacker starts a binding of their own app user and sends the callback link (their
    # code and state) to the victim: bound to the victim's account, the attacker would read
    # the victim's notices. The state names the attacker and their session: refused.
    victim_client.post("/inbox/preferences/messaging-app/bind/")  # victim has a nonce too
    link = _bind_through_the_app(attacker_client, fake_app, "攻击者的微信")
    victim_client.get(link)
    assert not MessagingAppBinding.objects.exists()

    # A forged state (right shape, wrong key) and a tampered one.
    victim_client.post("/inbox/preferences/messaging-app/bind/")
    fake_app.login_as = "受害人的微信"
    forged = signing.dumps({"u": victim.pk, "n": "guess"}, key="not-our-key",
                           salt="portal.notifications.messaging_app.bind")
    code = fake_app._code_for(openid_for(APPID, "受害人的微信"))
    response = victim_client.get("/inbox/preferences/messaging-app/callback/",
                                 {"code": code, "state": forged})
    assert response.status_code == 302 and not MessagingAppBinding.objects.exists()
    callback = _bind_through_the_app(victim_client, fake_app, "受害人的微信")
    response = victim_client.get(callback.replace("state=", "state=x"))
    assert not MessagingAppBinding.objects.exists()
    # (the tampered try spent the nonce: even the genuine callback now needs a new start)
    victim_client.get(callback)
    assert not MessagingAppBinding.objects.exists()

    # Started afresh, the genuine flow binds.
    victim_client.get(_bind_through_the_app(victim_client, fake_app, "受害人的微信"))
    assert MessagingAppBinding.objects.get(user=victim).openid == openid_for(APPID, "受害人的微信")


def test_messaging_app_binding_bad_code_and_taken_openid(db, fake_app):
    first, second = make_user(name="甲"), make_user(name="乙")
    client = host_client("localhost", second)
    callback = _bind_through_the_app(client, fake_app, "共用微信")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    fake_app._exchange(code)  # the code is used up: the exchange fails, nothing is bound
    client.get(callback)
    assert not MessagingAppBinding.objects.exists()

    messaging_app_bind(user=first, app_id=APPID, openid=openid_for(APPID, "共用微信"))
    client.get(_bind_through_the_app(client, fake_app, "共用微信"))
    assert not MessagingAppBinding.objects.filter(user=second).exists()
    with pytest.raises(MessagingAppOpenidTaken):
        messaging_app_bind(user=second, app_id=APPID, openid=openid_for(APPID, "共用微信"))
    # Binding again with another openid replaces the account's binding; unbind removes it.
    messaging_app_bind(user=first, app_id=APPID, openid=openid_for(APPID, "新微信"))
    assert MessagingAppBinding.objects.get(user=first).openid == openid_for(APPID, "新微信")
    assert messaging_app_unbind(user=first, app_id=APPID) is True
    assert messaging_app_unbind(user=first, app_id=APPID) is False


def test_messaging_app_pages_off_when_not_configured(db, settings):
    settings.MESSAGING_APP_URL = ""
    user = make_user()
    client = host_client("localhost", user)
    assert 'name="msgapp"' not in client.get("/inbox/preferences/").content.decode()
    assert client.post("/inbox/preferences/messaging-app/bind/").status_code == 404
    assert channel_preferences(user=user) == {"sms": True, "email": True}


def test_messaging_app_preferences_page_turns_the_channel_off(db, fake_app):
    user = make_user(name="偏好")
    client = host_client("alpha.localhost", user)
    client.post("/inbox/preferences/", {"sms": "on", "email": "on"})  # msgapp unticked
    assert channel_preferences(user=user) == {"sms": True, "email": True, "msgapp": False}
    page = client.get("/inbox/preferences/").content.decode()
    assert 'name="msgapp" checked' not in page and 'name="sms" checked' in page


# --------------------------------------------------------------------------- sending, in-process


def test_messaging_app_only_for_bound_and_opted_in(db, fake_app, hospital_a, settings):
    bound, unbound, opted_out = (make_user(name=n) for n in ("已绑定", "未绑定", "已关闭"))
    for u in (bound, opted_out):
        messaging_app_bind(user=u, app_id=APPID, openid=openid_for(APPID, u.name))
    channel_preference_set(user=opted_out, channel="msgapp", enabled=False)
    channels = _channels_for([bound, unbound, opted_out])
    assert "msgapp" in channels[bound.pk]
    assert "msgapp" not in channels[unbound.pk] and "msgapp" not in channels[opted_out.pk]

    event = notify(kind="announcement", hospital=hospital_a,
                   recipients=[bound, unbound, opted_out],
                   context={"title": "门诊通知", "body": "身份证 110101199003074477 请带好"})
    chunk_deliver(event_id=event.pk, user_ids=[bound.pk, unbound.pk, opted_out.pk])
    assert sorted(m["touser"] for m in fake_app.sent) == [openid_for(APPID, "已绑定")]
    message = fake_app.sent[0]
    assert message["template_id"] == settings.MESSAGING_APP_TEMPLATE_ID
    assert message["client_msg_id"] == f"{event.pk}:msgapp:{bound.pk}"
    assert message["data"]["first"]["value"] == "门诊通知"
    assert message["data"]["keyword1"]["value"] == hospital_a.name
    assert "110101199003074477" not in json.dumps(message, ensure_ascii=False)  # masked
    assert Delivery.objects.get(event=event, channel="msgapp").status == "sent"
    assert not Delivery.objects.filter(event=event, channel="msgapp",
                                       user__in=[unbound, opted_out]).exists()
    assert InboxMessage.objects.filter(kind="announcement", user__in=[bound, unbound,
                                                                      opted_out]).count() == 3

    # Without MESSAGING_APP_URL the channel is off for everyone, bound or not.
    settings.MESSAGING_APP_URL = ""
    assert "msgapp" not in _channels_for([bound])[bound.pk]


def test_messaging_app_per_event_template_and_language(db, fake_app, hospital_a, settings):
    settings.MESSAGING_APP_TEMPLATES = {"announcement": "tpl-announcement"}
    user = make_user(name="English", language="en")
    messaging_app_bind(user=user, app_id=APPID, openid=openid_for(APPID, "en-user"))
    event = notify(kind="waitlist_closed", hospital=hospital_a, recipients=[user],
                   context={"doctor": "Dr Li", "day": "2026-12-01", "reason": "illness"})
    chunk_deliver(event_id=event.pk, user_ids=[user.pk])
    message = fake_app.sent[-1]
    assert message["template_id"] == settings.MESSAGING_APP_TEMPLATE_ID  # no own template
    assert message["data"]["first"]["value"] == "Clinic stopped: Dr Li, 2026-12-01"
    assert message["data"]["keyword1"]["value"] == hospital_a.name_en
    event = notify(kind="announcement", hospital=hospital_a, recipients=[user],
                   context={"title": "T", "body": "B"})
    chunk_deliver(event_id=event.pk, user_ids=[user.pk])
    assert fake_app.sent[-1]["template_id"] == "tpl-announcement"


def test_messaging_app_uses_the_hospitals_own_wording(db, fake_app, hospital_a, hospital_b):
    from portal.notifications.models import NotificationTemplate

    NotificationTemplate.objects.create(hospital=hospital_a, kind="booking_cancelled",
                                        language="zh-hans", title="【甲院】已取消：%(doctor)s",
                                        body="%(name)s 的预约已取消。")
    user = make_user(name="改写")
    messaging_app_bind(user=user, app_id=APPID, openid=openid_for(APPID, "改写"))
    context = {"doctor": "王医生", "day": "12-01", "name": "改写", "number": 3}
    for hospital in (hospital_a, hospital_b):
        event = notify(kind="booking_cancelled", hospital=hospital, recipients=[user],
                       context=context)
        chunk_deliver(event_id=event.pk, user_ids=[user.pk])
    a, b = fake_app.sent[-2:]
    assert a["data"]["first"]["value"] == "【甲院】已取消：王医生"
    assert a["data"]["keyword2"]["value"] == "改写 的预约已取消。"
    assert b["data"]["first"]["value"] == "预约已取消：王医生，12-01"  # B: the built-in text
    assert b["data"]["keyword1"]["value"] == hospital_b.name


def test_messaging_app_unbound_after_planning_is_not_sent(db, fake_app, hospital_a):
    user = make_user(name="解绑")
    messaging_app_bind(user=user, app_id=APPID, openid=openid_for(APPID, "解绑"))
    event = notify(kind="announcement", hospital=hospital_a, recipients=[user],
                   context={"title": "T", "body": "B"})
    # The delivery is planned, then the user unbinds before the send (a retried chunk).
    Delivery.objects.create(event=event, user=user, channel="msgapp",
                            dedupe_key=f"{event.pk}:msgapp:{user.pk}")
    messaging_app_unbind(user=user, app_id=APPID)
    chunk_deliver(event_id=event.pk, user_ids=[user.pk])
    d = Delivery.objects.get(event=event, channel="msgapp")
    assert d.status == "dead" and "not bound" in d.last_error
    assert fake_app.sent == []


def test_messaging_app_token_cached_and_refreshed_once(db, fake_app, hospital_a, settings):
    users = [make_user(name=f"令牌{i}") for i in range(3)]
    for u in users:
        messaging_app_bind(user=u, app_id=APPID, openid=openid_for(APPID, u.name))
    redis.Redis.from_url(settings.REDIS_URL).delete(messaging_app.token_cache_key())
    first = notify(kind="announcement", hospital=hospital_a, recipients=users,
                   context={"title": "一", "body": "一"})
    chunk_deliver(event_id=first.pk, user_ids=[u.pk for u in users])
    assert fake_app.token_requests == 1  # one token for three messages (cached in Redis)

    fake_app.expire_tokens()
    second = notify(kind="announcement", hospital=hospital_a, recipients=users,
                    context={"title": "二", "body": "二"})
    chunk_deliver(event_id=second.pk, user_ids=[u.pk for u in users])
    assert fake_app.token_requests == 2  # refreshed exactly once
    assert [a["errcode"] for a in fake_app.attempts] == [0, 0, 0, 42001, 0, 0, 0]
    assert Delivery.objects.filter(event=second, channel="msgapp", status="sent").count() == 3


# --------------------------------------------------------------------------- a real worker


@pytest.fixture(scope="module")
def worker_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Its own Redis, the fake app and a real Celery worker pointed at both; this process's
    tasks go to that Redis for the module."""
    from portal.celery import app as celery_app
    from tests.portal.test_notifications_workers import _redis_server, _start, _worker_cmd

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = _redis_server(port)
    fake = FakeMessagingApp(appid=APPID).start()
    logs = tmp_path_factory.mktemp("msgapp-worker")
    with django_db_blocker.unblock():
        env = subprocess_env(REDIS_URL=url, TEST_REDIS_DB="0", MESSAGING_APP_URL=fake.url,
                             MESSAGING_APP_APPID=APPID, MESSAGING_APP_SECRET=fake.secret,
                             SMS_GATEWAY_URL="")
    worker = _start(_worker_cmd(), env, open(logs / "worker.log", "wb"))  # noqa: SIM115
    saved = celery_app.conf.broker_url

    def point(broker: str) -> None:
        celery_app.conf.broker_url = broker
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 60
        while not client.exists(WORKER_HEARTBEAT_KEY):
            assert time.monotonic() < deadline and worker.poll() is None, "worker did not start"
            time.sleep(0.2)
        point(url)
        yield fake
    finally:
        point(saved)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        fake.stop()
        stop_process(redis_proc)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _bound(name: str):
    user = make_user(name=name)
    openid = openid_for(APPID, f"{name}-{os.getpid()}-{user.pk}")
    messaging_app_bind(user=user, app_id=APPID, openid=openid)
    return user, openid


@pytest.mark.worker
def test_messaging_app_booking_confirmed_through_a_real_worker(committed_hospital_a, worker_world):
    from registration.models import TimeSlice
    from registration.services import booking as svc
    from tests.registration.helpers import make_patient, make_session

    hospital = committed_hospital_a
    with in_schema(hospital):
        _, schedule = make_session(fee=0, name="微信医生")
        user, member = make_patient("收微信")
        openid = openid_for(APPID, f"booking-{user.pk}-{os.getpid()}")
        messaging_app_bind(user=user, app_id=APPID, openid=openid)
        slice_ = TimeSlice.objects.filter(schedule=schedule).first()
        svc.booking_hold(slice_id=slice_.pk, family_member=member, account=user)
    _wait(lambda: worker_world.messages_to(openid), 60, "the template message")
    _wait(lambda: Delivery.objects.filter(user=user, channel="msgapp", status="sent").exists(),
          10, "the delivery recorded as sent")
    [message] = worker_world.messages_to(openid)
    assert message["data"]["first"]["value"].startswith("预约成功：微信医生")
    assert member.id_number not in json.dumps(message, ensure_ascii=False)
    assert InboxMessage.objects.filter(user=user, kind="booking_confirmed").count() == 1


@pytest.mark.worker
def test_messaging_app_transient_error_retried_once_delivered(committed_hospital_a, worker_world):
    user, openid = _bound("重试")
    worker_world.fail_next(-1, openid=openid)  # "system busy" once
    event = notify(kind="announcement", hospital=committed_hospital_a,
                   recipients=[user], context={"title": "重试通知", "body": "稍后送达"})
    _wait(lambda: Delivery.objects.filter(event=event, channel="msgapp", status="sent").exists(),
          60, "the retried delivery")
    d = Delivery.objects.get(event=event, channel="msgapp")
    assert d.attempts == 2
    assert [a["errcode"] for a in worker_world.attempts if a["openid"] == openid] == [-1, 0]
    assert len(worker_world.messages_to(openid)) == 1  # exactly once
    assert InboxMessage.objects.filter(user=user, kind="announcement").count() == 1


@pytest.mark.worker
def test_messaging_app_permanent_error_not_retried(committed_hospital_a, worker_world):
    user, openid = _bound("退订")
    worker_world.unsubscribe(openid)  # 43004: the user unfollowed the account
    event = notify(kind="announcement", hospital=committed_hospital_a,
                   recipients=[user], context={"title": "退订通知", "body": "不会送达"})
    _wait(lambda: Delivery.objects.filter(event=event, channel="msgapp", status="dead").exists(),
          60, "the dead delivery")
    time.sleep(4)  # longer than the chunk's first retry delay: nothing more may happen
    d = Delivery.objects.get(event=event, channel="msgapp")
    assert (d.status, d.attempts) == ("dead", 1) and "43004" in d.last_error
    assert [a["errcode"] for a in worker_world.attempts if a["openid"] == openid] == [43004]
    assert worker_world.messages_to(openid) == []
    assert Delivery.objects.get(event=event, channel="inbox").status == "sent"


@pytest.mark.worker
def test_messaging_app_expired_token_refreshed_once_by_the_worker(committed_hospital_a, worker_world):
    people = [_bound(f"过期{i}") for i in range(3)]
    warm, _ = _bound("预热")
    hospital = committed_hospital_a
    event = notify(kind="announcement", hospital=hospital, recipients=[warm],
                   context={"title": "预热", "body": "取得令牌"})
    _wait(lambda: Delivery.objects.filter(event=event, channel="msgapp", status="sent").exists(),
          60, "a first message (token cached)")
    before = worker_world.token_requests
    worker_world.expire_tokens()
    event = notify(kind="announcement", hospital=hospital, recipients=[u for u, _ in people],
                   context={"title": "令牌过期", "body": "刷新一次"})
    _wait(lambda: Delivery.objects.filter(event=event, channel="msgapp",
                                          status="sent").count() == 3, 60, "three messages")
    assert worker_world.token_requests == before + 1
    openids = {o for _, o in people}
    codes = [a["errcode"] for a in worker_world.attempts if a["openid"] in openids]
    assert codes.count(42001) == 1 and codes.count(0) == 3
    assert Delivery.objects.filter(event=event, channel="msgapp", attempts=1).count() == 3


def test_fake_messaging_app_runs_as_its_own_process(tmp_path):
    """`make run` starts it with `python -m`; it answers and shows what was sent."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "portal.dev.fake_messaging_app",
                             "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        line = proc.stdout.readline().decode()
        assert f"127.0.0.1:{port}" in line
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/cgi-bin/token?grant_type=client_credential"
                f"&appid={APPID}&secret=fake-app-secret-dev-only", timeout=5) as r:
            assert json.loads(r.read())["expires_in"] == 7200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/fake/messages", timeout=5) as r:
            assert json.loads(r.read())["messages"] == []
    finally:
        stop_process(proc)


def test_messaging_app_concurrent_refresh_fetches_one_token(db, fake_app, settings):
    """Eight senders find the token refused at once: one fetches a new token (under a Redis
    lock), the others take it: with WeChat every fetch would invalidate the others' token."""
    from concurrent.futures import ThreadPoolExecutor

    redis.Redis.from_url(settings.REDIS_URL).delete(messaging_app.token_cache_key())
    old = messaging_app.access_token()
    assert fake_app.token_requests == 1
    with ThreadPoolExecutor(8) as pool:
        new = set(pool.map(lambda _: messaging_app.access_token(replacing=old), range(8)))
    assert len(new) == 1 and old not in new
    assert fake_app.token_requests == 2
    ttl = redis.Redis.from_url(settings.REDIS_URL).ttl(messaging_app.token_cache_key())
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300  # renewed five minutes before the app's expiry
