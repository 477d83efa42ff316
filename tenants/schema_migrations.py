"""Fast migration of a new hospital schema: skip the Python work of shared-app migrations.

`migrate_schemas` runs every migration of every app in a new hospital schema. Migrations of apps
that are not in TENANT_APPS (auth, accounts, notifications, partners, ...) do nothing there: the
tenant router refuses each of their operations, RunPython and RunSQL included, so they only
add a row to the schema's django_migrations. They still cost most of provisioning, though:
Django applies each of them to its rendered historical model state, re-rendering every related
model (everything that points at the user model) per operation.

`record_shared_migrations` writes exactly those rows first, before `migrate_schemas` runs.
Django then builds their model state unrendered (as for any applied migration), and only the
tenant apps' migrations are applied for real. The schema's tables, constraints, data and
migration rows are the same as without it; only the rows' order and timestamps differ.
"""

from __future__ import annotations

from django.db import connection, router
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder


def record_shared_migrations(schema_name: str) -> int:
    """In the new, empty schema `schema_name`, record as applied every migration that migrate
    would apply there as a no-op: those of apps the router keeps out of hospital schemas whose
    dependencies are all such migrations too. Returns the number of rows written."""
    # As django-tenants' migrate_schemas: this schema only, so that the public schema's
    # django_migrations is neither read nor written.
    connection.set_schema(schema_name, include_public=False)
    try:
        recorder = MigrationRecorder(connection)
        recorder.ensure_schema()
        loader = MigrationLoader(connection)
        if loader.applied_migrations:
            return 0  # not a new schema: leave it all to migrate
        graph = loader.graph
        skipped = {key for key in graph.nodes
                   if not router.allow_migrate(connection.alias, key[0])}
        # Only migrations whose whole ancestry is skipped too: a shared migration that depended
        # on a hospital one would be left to migrate, so the recorded history stays consistent.
        plan: list[tuple[str, str]] = []
        for leaf in sorted(graph.leaf_nodes()):
            for key in graph.forwards_plan(leaf):
                if key in skipped and key not in plan and all(
                        parent in skipped for parent in graph.forwards_plan(key)):
                    plan.append(key)
        rows: list[tuple[str, str]] = []
        for key in plan:
            # As migrate records a squash: its replaced migrations, then the squash itself.
            rows.extend(graph.nodes[key].replaces or [])
            rows.append(key)
        Migration = recorder.Migration  # noqa: N806
        Migration.objects.using(connection.alias).bulk_create(
            [Migration(app=app, name=name) for app, name in rows])
        return len(rows)
    finally:
        connection.set_schema_to_public()
