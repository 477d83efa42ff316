"""Clinic bills now belong to registration (registration 0005 took over the models and their
tables, payments_clinicbill and payments_clinicbillitem, unchanged): payments forgets them in
Django's state only. Nothing in the database changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0010_reconciliationrun_provider_choices'),
        ('registration', '0005_clinic_bills_from_payments'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='ClinicBillItem'),
                migrations.DeleteModel(name='ClinicBill'),
            ],
        ),
    ]
