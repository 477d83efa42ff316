"""Reconciliation also runs with DEBUG on (`make run`, any debug environment).

Under DEBUG Django wraps cursors in CursorDebugWrapper, whose copy_expert() takes no keyword
arguments: finance's "Reconcile a day" failed with "copy_expert() got an unexpected keyword
argument 'size'" on every development and demo site.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test import override_settings
from django.utils import timezone

from payments.reconciliation import reconcile_day
from tests.helpers import in_schema


@override_settings(DEBUG=True)
def test_reconciliation_streams_the_statement_under_a_debug_cursor(fresh_sandbox, hospital_a):
    from django.db.backends.utils import CursorDebugWrapper

    with connection.cursor() as cur:
        assert isinstance(cur, CursorDebugWrapper)  # the wrapper this test is about
    day = timezone.localdate() - timedelta(days=2)
    with in_schema(hospital_a):
        run = reconcile_day(day=day)
    assert (run.status, run.discrepancies) == ("done", 0)
