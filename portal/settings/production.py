"""Production: everything secret or host-specific comes from the environment.

Start-up stops with one error naming every missing variable instead of falling back to a
development default (the development database, Redis, the sandbox's public secret, console
e-mail, a media folder inside the code). The variables (docs/operations.md lists them too):

  required   DJANGO_SETTINGS_MODULE=portal.settings.production, SECRET_KEY (50+ characters),
             DATABASE_URL, REDIS_URL, ALLOWED_HOSTS, PLATFORM_URL (https://…), MEDIA_ROOT,
             EMAIL_BACKEND=smtp with EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER,
             EMAIL_HOST_PASSWORD, EMAIL_USE_TLS as the relay needs), DEFAULT_FROM_EMAIL
  per channel, when it is switched on by its URL:
             SMS_GATEWAY_URL → SMS_GATEWAY_KEY;
             MESSAGING_APP_URL → MESSAGING_APP_APPID, MESSAGING_APP_SECRET;
             PAYMENTS_SANDBOX_ENABLED=true → SANDBOX_PAY_URL, SANDBOX_PAY_MASTER_SECRET
  optional   TLS_PROXY=true when a proxy in front terminates TLS and sets X-Forwarded-Proto
             (otherwise the header is never trusted); SECURE_HSTS_SECONDS (default one year),
             SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, database_settings, email_settings, env


def _given(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


_missing = [name for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS",
                              "PLATFORM_URL", "MEDIA_ROOT", "EMAIL_BACKEND", "DEFAULT_FROM_EMAIL")
            if not _given(name)]
_problems: list[str] = []
if _given("EMAIL_BACKEND"):
    if env.str("EMAIL_BACKEND") == "console":
        _problems.append("EMAIL_BACKEND=console prints e-mail instead of sending it; use smtp")
    elif env.str("EMAIL_BACKEND") == "smtp" and not _given("EMAIL_HOST"):
        _missing.append("EMAIL_HOST")
# A channel switched on by its URL needs its own secret, never the development one.
_CHANNEL_SECRETS = {"SMS_GATEWAY_URL": ("SMS_GATEWAY_KEY",),
                    "MESSAGING_APP_URL": ("MESSAGING_APP_APPID", "MESSAGING_APP_SECRET")}
for _switch, _secrets in _CHANNEL_SECRETS.items():
    if _given(_switch):
        _missing += [name for name in _secrets if not _given(name)]
PAYMENTS_SANDBOX_ENABLED = env.bool("PAYMENTS_SANDBOX_ENABLED", default=False)
if PAYMENTS_SANDBOX_ENABLED:
    _missing += [name for name in ("SANDBOX_PAY_URL", "SANDBOX_PAY_MASTER_SECRET") if not _given(name)]
if _given("SECRET_KEY"):
    if env.str("SECRET_KEY") == DEV_SECRET_KEY or len(env.str("SECRET_KEY")) < 50:
        _problems.append("SECRET_KEY must be a fresh random value of at least 50 characters")
if _given("PLATFORM_URL") and not env.str("PLATFORM_URL").startswith("https://"):
    _problems.append("PLATFORM_URL must start with https://")
if _missing or _problems:
    raise ImproperlyConfigured(
        "Production settings cannot start. "
        + (f"Missing environment variables: {', '.join(dict.fromkeys(_missing))}. " if _missing else "")
        + "; ".join(_problems))

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
PLATFORM_URL = env.str("PLATFORM_URL")
MEDIA_ROOT = env.path("MEDIA_ROOT")
DATABASES = {"default": database_settings(env.str("DATABASE_URL"))}
REDIS_URL = env.str("REDIS_URL")
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
MAILERS = email_settings()
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL")
SMS_GATEWAY_KEY = env.str("SMS_GATEWAY_KEY", default="")
MESSAGING_APP_APPID = env.str("MESSAGING_APP_APPID", default="")
MESSAGING_APP_SECRET = env.str("MESSAGING_APP_SECRET", default="")
SANDBOX_PAY_URL = env.str("SANDBOX_PAY_URL", default="")
SANDBOX_PAY_MASTER_SECRET = env.str("SANDBOX_PAY_MASTER_SECRET", default="")

# ---- HTTPS everywhere
SECURE_SSL_REDIRECT = True
# Load balancers probe /health/ over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a commitment browsers keep for months; the operator opts in.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LANGUAGE_COOKIE_SECURE = True
# X-Forwarded-Proto is trusted only when the operator says a TLS-terminating proxy sets it
# (anyone can send the header to a server that is reached directly).
if env.bool("TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]  # noqa: F405
