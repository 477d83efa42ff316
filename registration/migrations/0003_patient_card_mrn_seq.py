"""The per-hospital sequence behind medical record numbers (created once, not per booking)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("registration", "0002_titlefee_booking_bookingban_bookingevent_doctor_and_more")]
    operations = [
        migrations.RunSQL("CREATE SEQUENCE IF NOT EXISTS patient_card_mrn_seq START 1",
                          "DROP SEQUENCE IF EXISTS patient_card_mrn_seq"),
    ]
