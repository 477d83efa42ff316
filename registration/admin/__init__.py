"""The registration desk in each hospital's admin: catalogue, schedules, bookings.

Thin by design: every state change (generate, stop-clinic, check-in, cancel) is one call to a
service in `registration.services`, which keeps the invariants and writes the audit trail; this
module parses forms, calls the service and reports. Lists that grow with data annotate their
figures in the queryset, so a page costs the same number of queries for 3 rows or 300.
"""

# One module per model group; imported here so that admin autodiscovery registers them all.
from . import bills, bookings, catalogue, schedule_templates, schedules, waitlist  # noqa: F401
