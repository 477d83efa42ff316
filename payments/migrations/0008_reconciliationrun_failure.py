from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("payments", "0007_reconciliation_indexes")]

    operations = [
        migrations.AddField(
            model_name="reconciliationrun",
            name="failure",
            field=models.CharField(
                blank=True, max_length=30, verbose_name="what failed",
                choices=[("provider_unreachable", "Payment provider unreachable"),
                         ("statement_malformed", "Statement file unreadable"),
                         ("internal", "Internal error")]),
        ),
    ]
