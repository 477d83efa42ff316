"""django-tenants' PostgreSQL backend, without a `SET search_path` per request.

With TENANT_LIMIT_SET_CALLS django-tenants sends `SET search_path` once after each tenant
switch. But the tenant middleware switches at the start of every request (to public, then to
the host's hospital) even when the persistent connection already has that hospital's path, the
common case, so every request paid one more round trip. This backend remembers the path it
last sent on the connection, and a switch to that same path keeps it. Whatever can undo a SET
on the server (close, rollback, savepoint rollback) forgets it, as django-tenants' own flag
does, so it never outlives what the server holds. tests/tenants/test_search_path.py holds it
to that.
"""

from __future__ import annotations

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    def __init__(self, *args, **kwargs):
        self._sent_search_path = None  # what the server holds, as far as we know
        super().__init__(*args, **kwargs)

    def set_tenant(self, tenant, include_public=True):
        super().set_tenant(tenant, include_public)
        if self._sent_search_path is not None and self.connection is not None \
                and self._get_cursor_search_paths() == self._sent_search_path:
            self.search_path_set_schemas = self._sent_search_path

    def _handle_search_path(self, cursor=None):
        super()._handle_search_path(cursor)
        if not self._setting_search_path:
            # Set after a successful SET (or when one was not needed); None after a failed one.
            self._sent_search_path = self.search_path_set_schemas

    def close(self):
        self._sent_search_path = None
        super().close()

    def rollback(self):
        self._sent_search_path = None
        super().rollback()

    def savepoint_rollback(self, sid):
        try:
            super().savepoint_rollback(sid)
        finally:
            self._sent_search_path = None
