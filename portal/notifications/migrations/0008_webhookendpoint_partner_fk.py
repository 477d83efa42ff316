"""Second half of the partner link: the name column goes, the link takes its name."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0007_webhookendpoint_partner_data"),
    ]

    operations = [
        migrations.RemoveField(model_name="webhookendpoint", name="partner"),
        migrations.RenameField(model_name="webhookendpoint", old_name="partner_link",
                               new_name="partner"),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="partner",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="webhook_endpoints", to="partners.partner",
                                    verbose_name="partner"),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="own_events_only",
            field=models.BooleanField(
                default=False,
                help_text="Set for endpoints a partner registered through the API: booking "
                          "events only for bookings that partner made, plus hospital-wide "
                          "announcements.",
                verbose_name="only the partner's own bookings"),
        ),
    ]
