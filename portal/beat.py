"""The beat scheduler: periodic jobs for every active hospital, plus beat's heartbeat.

Celery's beat imports this module (CELERY_BEAT_SCHEDULER = "portal.beat:HeartbeatTenantScheduler")
before Django is set up, and tenant-schemas-celery's scheduler needs the app registry, so the
class is built on first access (PEP 562), after `django.setup()`.
"""

from __future__ import annotations

from functools import cache

import django
from django.apps import apps


@cache
def _scheduler_class() -> type:
    if not apps.ready:
        django.setup()
    from tenant_schemas_celery.scheduler import TenantAwareScheduler

    from portal.celery import _beat_heartbeat_now
    from tenants.models import Hospital

    class HeartbeatTenantScheduler(TenantAwareScheduler):
        @classmethod
        def get_queryset(cls):
            # Hospitals still being provisioned have no tables yet, and inactive ones are closed.
            return Hospital.objects.filter(is_active=True, is_ready=True)

        def tick(self, *args, **kwargs):
            _beat_heartbeat_now()
            return super().tick(*args, **kwargs)

    HeartbeatTenantScheduler.__module__ = __name__
    HeartbeatTenantScheduler.__qualname__ = "HeartbeatTenantScheduler"
    return HeartbeatTenantScheduler


def __getattr__(name: str):
    if name == "HeartbeatTenantScheduler":
        return _scheduler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
