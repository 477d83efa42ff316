from __future__ import annotations

from celery import shared_task
from django.db import connection

from .services import departments_seed_defaults


@shared_task(name="registration.departments_seed_defaults")
def departments_seed_defaults_task() -> dict:
    """Restore missing default departments in the sending hospital's schema."""
    created = departments_seed_defaults()
    return {"schema": connection.schema_name, "created": created}
