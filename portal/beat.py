"""The beat scheduler: periodic jobs for every active hospital, plus beat's heartbeat."""

from __future__ import annotations

import django
from django.apps import apps

if not apps.ready:  # beat imports this module before Django is set up
    django.setup()

from tenant_schemas_celery.scheduler import TenantAwareScheduler  # noqa: E402

from portal.celery import _beat_heartbeat_now  # noqa: E402
from tenants.models import Hospital  # noqa: E402


class HeartbeatTenantScheduler(TenantAwareScheduler):
    @classmethod
    def get_queryset(cls):
        # Hospitals still being provisioned have no tables yet, and inactive ones are closed.
        return Hospital.objects.filter(is_active=True, is_ready=True)

    def tick(self, *args, **kwargs):
        _beat_heartbeat_now()
        return super().tick(*args, **kwargs)
