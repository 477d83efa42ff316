"""The free-text partner name of webhook endpoints becomes a link to partners.Partner.

Each distinct name becomes a Partner (or joins the one of that name)."""

from django.db import migrations


def names_to_partners(apps, schema_editor):
    Partner = apps.get_model("partners", "Partner")
    WebhookEndpoint = apps.get_model("notifications", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.all():
        name = (endpoint.partner or "").strip()[:100] or "unnamed partner"
        partner, _created = Partner.objects.get_or_create(name=name)
        endpoint.partner_link = partner
        endpoint.save(update_fields=["partner_link"])


def partners_to_names(apps, schema_editor):
    WebhookEndpoint = apps.get_model("notifications", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.select_related("partner_link"):
        endpoint.partner = endpoint.partner_link.name
        endpoint.save(update_fields=["partner"])


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0006_webhookendpoint_partner_link"),
    ]

    operations = [migrations.RunPython(names_to_partners, partners_to_names)]
