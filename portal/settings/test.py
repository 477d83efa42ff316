"""The test suite: real PostgreSQL and Redis, fast password hashing."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests use their own Redis database, so a `make run` worker on the same Redis never picks up
# a test's tasks (and the other way round).
import re  # noqa: E402

REDIS_URL = re.sub(r"/\d*$", "", REDIS_URL.rstrip("/")) + "/" + env.str("TEST_REDIS_DB", default="15")  # noqa: F405
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
# Subprocess web servers in the browser tests serve static files straight from the sources.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Two suites on one server (two checkouts, or a developer beside CI) need different names.
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_portal")}  # noqa: F405
# Webhook endpoints on this machine (127.0.0.1) are fine here.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=True)
