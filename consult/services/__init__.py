"""Every change in the consult app, one module per concern; import the module you need
(`from consult.services import consultations`), never names through this package:

- `triage_rules`: rule versions and their publishing, seeding, answers and triage decisions
  (the pure engine that decides is `consult.triage`);
- `consultations`: start, payment and closed-order handlers, messages, close, timeout, cancel,
  rating;
- `records`: reports and records, and `record_access`, the one gate for reading one;
- `attachments`: checks and clean-up of images sent in a consultation;
- `notices`: telling a patient (through the notification outbox).

Reads used by pages and admin are in `consult.selectors`; errors in `consult.errors`.
"""
