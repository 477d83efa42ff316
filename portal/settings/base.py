"""Settings shared by every environment. Values come from the environment with local defaults."""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# ----------------------------------------------------------------------------- core
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # production.py refuses it
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", ".localhost", "127.0.0.1"])

# ----------------------------------------------------------------------------- tenancy
# Apps in the public schema (the platform) ...
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "portal.accounts",
    "portal.partners",
    "portal.notifications",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
# ... and apps with tables in every hospital's schema. The admin is in both so that each
# hospital keeps its own admin log.
TENANT_APPS = [
    "django.contrib.admin",
    "registration",
    "payments",
    "consult",
]
INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]

TENANT_MODEL = "tenants.Hospital"
TENANT_DOMAIN_MODEL = "tenants.Domain"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
PUBLIC_SCHEMA_URLCONF = "portal.urls_public"
ROOT_URLCONF = "portal.urls_hospital"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
# One `SET search_path` per tenant switch instead of one before every query (half the
# statements of a booking). Safe with django-tenants 4.0.1: every switch (middleware, Celery
# task, tenant_context) forgets the cached path, and so do close, rollback and savepoint
# rollback (which undo a SET in PostgreSQL). tests/tenants/test_search_path.py holds it to that.
TENANT_LIMIT_SET_CALLS = env.bool("TENANT_LIMIT_SET_CALLS", default=True)
# The platform's own host names (served from the public schema).
PLATFORM_DOMAIN = env.str("PLATFORM_DOMAIN", default="localhost")
# Where hospital sites send people to sign in; derived from the request when empty.
PLATFORM_URL = env.str("PLATFORM_URL", default="")
# Default host suffix for new hospitals: CODE + suffix (CODE.localhost in development).
HOSPITAL_DOMAIN_SUFFIX = env.str("HOSPITAL_DOMAIN_SUFFIX", default=".localhost")

MIDDLEWARE = [
    "portal.middleware.CachedTenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: an account's chosen language follows it to every hospital's host.
    "portal.middleware.PortalLocaleMiddleware",
    "portal.accounts.sso.SingleSignOnMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.site",
                "portal.notifications.context_processors.inbox",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

# ----------------------------------------------------------------------------- data stores


def database_settings(url: str) -> dict:
    """The default database from its URL, with the options every environment uses."""
    db = environ.Env.db_url_config(url)
    db["ENGINE"] = "portal.db"
    # Persistent connections: without them a trivial tenant page is several times slower.
    db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    db["CONN_HEALTH_CHECKS"] = True
    # psycopg 3: parameters bound on the server, and a statement prepared there after its 5th
    # use on a connection (planning was most of PostgreSQL's time per booking). A pooler in
    # transaction mode cannot keep prepared statements: DB_PREPARE_THRESHOLD=off there.
    options = db.setdefault("OPTIONS", {})
    options["server_side_binding"] = env.bool("DB_SERVER_SIDE_BINDING", default=True)
    threshold = env.str("DB_PREPARE_THRESHOLD", default="5").strip().lower()
    options["prepare_threshold"] = None if threshold in ("", "off", "none") else int(threshold)
    return db


DATABASES = {"default": database_settings(
    env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:55432/portal"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:56379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Tenant-aware keys: one hospital's cache entries never answer for another's.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# ----------------------------------------------------------------------------- auth
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "portal.accounts.validators.PasswordNotBlankValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
# One-time tickets that carry a platform login to a hospital's own host.
SSO_TICKET_SECONDS = 60

# ----------------------------------------------------------------------------- CSP
# Enforced in every environment, so the browser tests see what production browsers see.
# Scripts and <style> blocks of our own carry the request's nonce ({{ csp_nonce }}); nothing
# inline runs without it. The API docs pages relax style-src (portal/partners/urls.py).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# ----------------------------------------------------------------------------- i18n
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# ----------------------------------------------------------------------------- static files
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (consultation images); served only through views that check access.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".run" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# ----------------------------------------------------------------------------- Celery
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With Redis, a task a killed worker had taken is handed out again after this many seconds.
# It must exceed the longest countdown/ETA (hold expiry: 15 minutes by default).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_EXPIRES = 3600
# The worker caches the schema -> hospital lookup instead of querying it for every task.
CELERY_TASK_TENANT_CACHE_SECONDS = 60
CELERY_BEAT_SCHEDULER = "portal.beat:HeartbeatTenantScheduler"
# Entries without "tenant_schemas" run in every active hospital; "tenant_schemas": ["public"]
# runs a job once, on the platform.
CELERY_BEAT_SCHEDULE: dict = {
    "orders-close-expired": {"task": "payments.orders_close_expired", "schedule": 60.0},
    "bookings-expire-due": {"task": "registration.bookings_expire_due", "schedule": 60.0},
    # 16:30 UTC = 00:30 in China: yesterday's unattended bookings become no-shows.
    "bookings-mark-no-shows": {"task": "registration.bookings_mark_no_shows",
                               "schedule": crontab(hour=16, minute=30)},
    "refunds-retry-pending": {"task": "payments.refunds_retry_pending", "schedule": 300.0},
    "bills-insurance-sweep": {"task": "registration.bills_insurance_sweep", "schedule": 300.0},
    # 18:30 UTC = 02:30 in China; the task itself works out "yesterday" per hospital time zone.
    "reconcile-yesterday": {"task": "payments.reconcile_yesterday",
                            "schedule": crontab(hour=18, minute=30)},
    # Hourly in every hospital; it does nothing before REMINDER_HOUR local time.
    "bookings-remind-tomorrow": {"task": "registration.bookings_remind_tomorrow",
                                 "schedule": crontab(minute=0)},
    # Consultations no doctor answered in time: timed out, refunded, patient told.
    "consult-timeout-due": {"task": "consult.consultations_timeout_due", "schedule": 60.0},
    "notifications-relay-pending": {
        "task": "notifications.relay_pending",
        "schedule": env.float("NOTIFY_SWEEP_SECONDS", default=60.0),
        "tenant_schemas": ["public"],
    },
    "notifications-webhooks-sweep": {
        "task": "notifications.webhook_sweep", "schedule": 60.0, "tenant_schemas": ["public"],
    },
    "partners-idempotency-purge": {
        "task": "partners.idempotency_purge", "schedule": 3600.0, "tenant_schemas": ["public"],
    },
    "sso-tickets-cleanup": {
        "task": "accounts.sso_tickets_cleanup",
        "schedule": 3600.0,
        "tenant_schemas": ["public"],
    },
}
# A heartbeat older than this many seconds counts as down on /health/.
HEALTH_HEARTBEAT_MAX_AGE = env.int("HEALTH_HEARTBEAT_MAX_AGE", default=60)

# ----------------------------------------------------------------------------- payments
# The sandbox provider (a training mode hospitals may pick) is offered only where this allows it;
# production turns it off unless PAYMENTS_SANDBOX_ENABLED=true.
PAYMENTS_SANDBOX_ENABLED = env.bool("PAYMENTS_SANDBOX_ENABLED", default=True)
# The built-in sandbox provider (protocol: payments/providers/sandbox_protocol.py; `make run`
# starts its development server, portal/dev/sandbox_pay.py, on 8001).
SANDBOX_PAY_URL = env.str("SANDBOX_PAY_URL", default="http://127.0.0.1:8001")
SANDBOX_PAY_MASTER_SECRET = env.str("SANDBOX_PAY_MASTER_SECRET",
                                    default="sandbox-master-secret-dev-only")

# ----------------------------------------------------------------------------- notifications
# The SMS gateway (empty: no SMS). `make run` starts a local fake on 8002 (portal/dev/fake_sms.py).
SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_KEY = env.str("SMS_GATEWAY_KEY", default="sms-fake-key-dev-only")
# The messaging app's template messages (a WeChat-like official account; empty URL: the
# channel is off). `make run` starts a local fake on 8003 (portal/dev/fake_messaging_app.py).
MESSAGING_APP_URL = env.str("MESSAGING_APP_URL", default="")  # API: token and template sends
# Where browsers go to authorize a binding (the app's web OAuth host); empty: MESSAGING_APP_URL.
MESSAGING_APP_OAUTH_URL = env.str("MESSAGING_APP_OAUTH_URL", default="")
MESSAGING_APP_APPID = env.str("MESSAGING_APP_APPID", default="wxfakeappid00dev")
MESSAGING_APP_SECRET = env.str("MESSAGING_APP_SECRET", default="fake-app-secret-dev-only")
# One generic template for every event, and optionally one per event kind
# ("booking_confirmed=TEMPLATE_ID,schedule_stopped=TEMPLATE_ID").
MESSAGING_APP_TEMPLATE_ID = env.str("MESSAGING_APP_TEMPLATE_ID", default="portal-notice-generic")
MESSAGING_APP_TEMPLATES = env.dict("MESSAGING_APP_TEMPLATES", default={})
# Email (Django's MAILERS, filled from the environment). Production: EMAIL_BACKEND=smtp and
# EMAIL_HOST / EMAIL_PORT (and EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS). Locally,
# and under `make run`, the default "console" backend prints each email on the worker's output.


def email_settings() -> dict:
    """Django's MAILERS from EMAIL_BACKEND ("smtp", "console" or a dotted backend path)."""
    backends = {"smtp": "django.core.mail.backends.smtp.EmailBackend",
                "console": "django.core.mail.backends.console.EmailBackend"}
    name = env.str("EMAIL_BACKEND", default="console")
    mailers = {"default": {"BACKEND": backends.get(name, name)}}
    if mailers["default"]["BACKEND"] == backends["smtp"]:
        mailers["default"]["OPTIONS"] = {
            "host": env.str("EMAIL_HOST", default="localhost"),
            "port": env.int("EMAIL_PORT", default=25),
            "username": env.str("EMAIL_HOST_USER", default=""),
            "password": env.str("EMAIL_HOST_PASSWORD", default=""),
            "use_tls": env.bool("EMAIL_USE_TLS", default=False),
            "timeout": env.int("EMAIL_TIMEOUT", default=10)}
    return mailers


MAILERS = email_settings()
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@portal.localhost")
# Message-IDs of notification emails end in @NOTIFY_EMAIL_DOMAIN.
NOTIFY_EMAIL_DOMAIN = env.str("NOTIFY_EMAIL_DOMAIN", default="notify.portal.localhost")
# Visit reminders go out the day before, from this hour (hospital local time) on. One hour for
# every hospital (a per-hospital hour would need a Hospital field).
REMINDER_HOUR = env.int("REMINDER_HOUR", default=19)

# Partner webhooks: tries before a delivery is dead-lettered, and the backoff base (seconds).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_BACKOFF_BASE_SECONDS = env.float("WEBHOOK_BACKOFF_BASE_SECONDS", default=10.0)
# Endpoints must be public internet addresses (no loopback, private or link-local targets: SSRF);
# local development and the tests deliver to 127.0.0.1, so local.py and test.py allow them.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)

# ----------------------------------------------------------------------------- API
# DRF serves only the partner API (portal/partners): API-key auth, JSON in and out, one error
# shape (portal.partners.errors).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "portal.partners.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hospital portal partner API",
    "VERSION": "1.0.0",
    "PREPROCESSING_HOOKS": ["portal.partners.schema.only_api"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "portal.partners.schema.describe",
                             "portal.partners.schema.rate_limit_headers"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",  # served from this site: the docs work offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"SlotStatusEnum": ["free", "busy", "not_yet_released"]},
}
# Per API key: requests per window (seconds), shared by all web processes (Redis).
PARTNER_API_RATE_LIMIT = env.int("PARTNER_API_RATE_LIMIT", default=600)
PARTNER_API_RATE_WINDOW = env.int("PARTNER_API_RATE_WINDOW", default=60)
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)

# ----------------------------------------------------------------------------- logging
# Resident ID and mobile numbers never reach a log line in full.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portal.logging.RedactPersonalData"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

SILENCED_SYSTEM_CHECKS: list[str] = []
