"""Clinic bills move from payments to registration: the models only, not the data.

The tables keep their names (payments_clinicbill, payments_clinicbillitem) and their rows,
constraints and indexes: this migration and payments 0011 change Django's state only
(SeparateDatabaseAndState with no database operations). Order: this one (registration gains
the models) after payments 0010, then payments 0011 (payments drops them), so a fresh schema
and an existing one go through the same steps.

The content types follow the models, so that admin history and permissions keep working:
see `_content_types_follow`.
"""

import django.db.models.deletion
import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models

import payments.models

MODELS = ("clinicbill", "clinicbillitem")


def _content_types_follow(apps, schema_editor):
    """payments.clinicbill(item) content types become registration's.

    Content types and permissions are in the public schema, each hospital's admin history in
    its own; this runs once per hospital schema (registration is a hospital app). If the
    registration content type does not exist yet, the old row is renamed: permissions and every
    hospital's history follow at once. If it exists already (migrate_schemas creates content
    types for the new state in the public schema before it migrates the hospitals), this
    hospital's history is moved to it, and so are the grants of the old permissions; the old
    row stays, unused, for the other hospitals' turn (remove_stale_contenttypes may drop it).
    """
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")  # noqa: N806
    Permission = apps.get_model("auth", "Permission")  # noqa: N806
    LogEntry = apps.get_model("admin", "LogEntry")  # noqa: N806
    for model in MODELS:
        old = ContentType.objects.using(db).filter(app_label="payments", model=model).first()
        if old is None:
            continue
        new = ContentType.objects.using(db).filter(app_label="registration", model=model).first()
        if new is None:
            old.app_label = "registration"
            old.save(update_fields=["app_label"])
            continue
        LogEntry.objects.using(db).filter(content_type=old).update(content_type=new)
        for perm in Permission.objects.using(db).filter(content_type=old):
            twin = Permission.objects.using(db).filter(content_type=new,
                                                       codename=perm.codename).first()
            if twin is None:
                perm.content_type = new
                perm.save(update_fields=["content_type"])
            else:
                twin.group_set.add(*perm.group_set.all())
                twin.user_set.add(*perm.user_set.all())


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0010_reconciliationrun_provider_choices'),
        ('registration', '0004_verbose_names'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('admin', '0003_logentry_add_action_flag_choices'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ClinicBill',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('bill_no', models.CharField(max_length=32, unique=True, verbose_name='bill number')),
                        ('doctor_name', models.CharField(blank=True, max_length=50, verbose_name='doctor')),
                        ('total_fen', payments.models.FenField(default=0, verbose_name='total (fen)')),
                        ('status', models.CharField(choices=[('unpaid', 'Unpaid'), ('paying', 'Payment in progress'), ('paid', 'Paid'), ('cancelled', 'Cancelled'), ('refunded', 'Refunded')], db_index=True, default='unpaid', max_length=20, verbose_name='status')),
                        ('insurance_type', models.CharField(blank=True, max_length=20, verbose_name='insurance type')),
                        ('settlement', models.JSONField(blank=True, default=dict, verbose_name='settlement')),
                        ('insurance_settlement_id', models.CharField(blank=True, db_index=True, max_length=64, verbose_name='insurer settlement id')),
                        ('insurance_status', models.CharField(blank=True, max_length=10, verbose_name='insurer settlement status')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('paid_at', models.DateTimeField(blank=True, null=True, verbose_name='paid at')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='created by')),
                        ('department', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registration.department', verbose_name='department')),
                        ('order', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='clinic_bill', to='payments.order', verbose_name='order')),
                        ('patient_card', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='clinic_bills', to='registration.patientcard', verbose_name='patient card')),
                    ],
                    options={
                        'verbose_name': 'clinic bill',
                        'verbose_name_plural': 'clinic bills',
                        'db_table': 'payments_clinicbill',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='ClinicBillItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, verbose_name='item')),
                        ('item_class', models.CharField(choices=[('A', 'Class A (甲类, covered)'), ('B', 'Class B (乙类, partly covered)'), ('C', 'Class C (丙类, not covered)')], default='A', max_length=1, verbose_name='insurance class')),
                        ('unit_price_fen', payments.models.FenField(verbose_name='unit price (fen)')),
                        ('quantity', models.PositiveIntegerField(default=1, verbose_name='quantity')),
                        ('amount_fen', payments.models.FenField(editable=False, verbose_name='amount (fen)')),
                        ('bill', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='registration.clinicbill')),
                    ],
                    options={
                        'verbose_name': 'bill item',
                        'verbose_name_plural': 'bill items',
                        'db_table': 'payments_clinicbillitem',
                        'constraints': [models.CheckConstraint(condition=models.Q(('unit_price_fen__gte', 0)), name='bill_item_price_ok'), models.CheckConstraint(condition=models.Q(('amount_fen', django.db.models.expressions.CombinedExpression(models.F('unit_price_fen'), '*', models.F('quantity')))), name='bill_item_amount_is_price_times_quantity')],
                    },
                ),
            ],
        ),
        migrations.RunPython(_content_types_follow, migrations.RunPython.noop, elidable=False),
    ]
