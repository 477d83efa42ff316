"""The registration services, by concern. Import the submodule you need, e.g.
`from registration.services import booking as booking_services` or
`from registration.services.rules import doctor_fee_fen`; this package re-exports nothing.

rules      the booking rules, each in one place (release, cut-off, slice state, fee, arrival)
locks      the named locks and the lock order
booking    hold, payment, cancel, expiry, check-in, no-shows
waitlist   join, offer a freed place, leave
schedules  sessions and slices from templates, stop-clinic
reminders  the day-before reminder
patients   the hospital's patient cards
partner    bookings made through the partner API
seeding    a new hospital's default departments and title fees
"""
