"""The free-text partner name of webhook endpoints becomes a link to partners.Partner
(three migrations, so the data step never shares a transaction with the ALTERs)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0005_messaging_app_channel"),
        ("partners", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="partner_link",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="partners.partner"),
        ),
        migrations.AlterField(
            model_name="webhookendpoint", name="partner",
            field=models.CharField(max_length=100, blank=True, default="",
                                   verbose_name="partner"),
        ),
    ]
