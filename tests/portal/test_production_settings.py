"""Production settings: they start with the documented variables and pass `check --deploy`;
without one of them they stop, naming it, instead of falling back to a development default."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

# Exactly the variables portal/settings/production.py and docs/operations.md document.
DOCUMENTED = {
    "DJANGO_SETTINGS_MODULE": "portal.settings.production",
    "SECRET_KEY": "x7Jq0vN3pL9sT2wY5bC8eH1kM4nR6uZ0aD3fG7jK9pS2vX5yB8cE1hL4oQ7tW0zA",
    "DATABASE_URL": "postgres://portal:secret@db.internal:5432/portal",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "ALLOWED_HOSTS": ".portal.example.cn",
    "PLATFORM_URL": "https://portal.example.cn",
    "MEDIA_ROOT": "/var/lib/portal/media",
    "EMAIL_BACKEND": "smtp",
    "EMAIL_HOST": "smtp.internal",
    "DEFAULT_FROM_EMAIL": "noreply@portal.example.cn",
}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # A clean environment: nothing of the developer's or the suite's settings leaks in.
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def _setting(env: dict[str, str], *names: str) -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{n: repr(getattr(s, n, None)) for n in {list(names)!r}}}))")
    done = _run(env, "-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_settings_pass_check_deploy_with_the_documented_variables():
    done = _run(DOCUMENTED, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("name", [n for n in DOCUMENTED if n != "DJANGO_SETTINGS_MODULE"])
def test_production_settings_stop_naming_a_missing_variable(name):
    env = {k: v for k, v in DOCUMENTED.items() if k != name}
    done = _run(env, "manage.py", "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert name in done.stderr.splitlines()[-1]


@pytest.mark.parametrize(("extra", "named"), [
    ({"SMS_GATEWAY_URL": "https://sms.example.cn"}, "SMS_GATEWAY_KEY"),
    ({"MESSAGING_APP_URL": "https://api.example.cn"}, "MESSAGING_APP_SECRET"),
    ({"PAYMENTS_SANDBOX_ENABLED": "true"}, "SANDBOX_PAY_MASTER_SECRET"),
    ({"EMAIL_BACKEND": "console"}, "EMAIL_BACKEND=console"),
    ({"SECRET_KEY": "dev-only-insecure-secret-key-change-me"}, "SECRET_KEY"),
    ({"PLATFORM_URL": "http://portal.example.cn"}, "https://"),
])
def test_production_settings_refuse_channels_without_secrets_and_development_values(extra, named):
    done = _run({**DOCUMENTED, **extra}, "manage.py", "check")
    assert done.returncode != 0
    assert named in done.stderr.splitlines()[-1]


def test_production_settings_secure_by_default_and_proxy_header_only_when_told():
    values = _setting(DOCUMENTED, "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE",
                      "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "DEBUG", "MAILERS",
                      "PAYMENTS_SANDBOX_ENABLED", "SMS_GATEWAY_KEY", "MESSAGING_APP_SECRET")
    assert values["SECURE_SSL_REDIRECT"] == "True"
    assert int(values["SECURE_HSTS_SECONDS"]) >= 31536000
    assert values["SESSION_COOKIE_SECURE"] == values["CSRF_COOKIE_SECURE"] == "True"
    assert values["DEBUG"] == "False"
    assert values["SECURE_PROXY_SSL_HEADER"] == "None"
    assert "smtp" in values["MAILERS"]
    # No development secret survives into production.
    assert values["PAYMENTS_SANDBOX_ENABLED"] == "False"
    assert values["SMS_GATEWAY_KEY"] == values["MESSAGING_APP_SECRET"] == "''"
    behind_proxy = _setting({**DOCUMENTED, "TLS_PROXY": "true"}, "SECURE_PROXY_SSL_HEADER")
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
