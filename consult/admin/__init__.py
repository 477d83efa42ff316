"""Consult and records in each hospital's admin, one module per model group:

- `consultations`: the consultation settings, online doctors, consultations with quality
  figures;
- `triage_rules`: triage forms and rules (versioned), triage results;
- `records`: records and reports with the access log.

Thin: every change calls `consult.services`; every opening of a record's page goes through
`records.record_access`, which logs it. Doctors (and hospital admins) work here. Importing this
package (Django's admin autodiscovery does) registers every model admin.
"""

from . import consultations, records, triage_rules  # noqa: F401  (they register the admins)
