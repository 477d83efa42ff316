"""A hospital's payment settings: which provider, and its merchant credentials."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import StaffMembership
from portal.admin_sites import (
    RoleModelAdmin,
    hospital_admin_site,
)

from ..models import PaymentSettings

Role = StaffMembership.Role


class PaymentSettingsForm(forms.ModelForm):
    """Secrets are write-only: left empty, the stored value is kept."""

    SECRET_FIELDS = ("sandbox_api_key", "wechat_private_key", "wechat_apiv3_key",
                     "insurance_api_key")

    class Meta:
        model = PaymentSettings
        fields = ("provider", "sandbox_merchant_id", "sandbox_api_key", "wechat_mchid",
                  "wechat_appid", "wechat_cert_serial_no", "wechat_private_key",
                  "wechat_apiv3_key", "wechat_platform_public_key",
                  "wechat_platform_public_key_id", "wechat_base_url", "insurance_policy",
                  "insurance_gateway_url", "insurance_api_key")
        widgets = {
            "insurance_api_key": forms.PasswordInput(render_value=False),
            "sandbox_api_key": forms.PasswordInput(render_value=False),
            "wechat_private_key": forms.Textarea({"rows": 4, "placeholder": "(unchanged)"}),
            "wechat_apiv3_key": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.PAYMENTS_SANDBOX_ENABLED:
            # The sandbox is a training mode; this platform does not offer it.
            self.fields["provider"].choices = [
                c for c in self.fields["provider"].choices if c[0] != PaymentSettings.Provider.SANDBOX]
        for name in self.SECRET_FIELDS:
            self.fields[name].required = False
            self.initial[name] = ""

    def clean_insurance_policy(self):
        from ..insurance import InsuranceInputError, InsurancePolicy

        policy = self.cleaned_data.get("insurance_policy") or {}
        if policy:
            try:
                InsurancePolicy.from_dict(policy)
            except (InsuranceInputError, TypeError) as exc:
                raise forms.ValidationError(str(getattr(exc, "message", exc))) from None
        return policy

    def clean(self):
        data = super().clean()
        for name in self.SECRET_FIELDS:
            if not data.get(name) and self.instance.pk:
                data[name] = getattr(self.instance, name)
        return data


@admin.register(PaymentSettings, site=hospital_admin_site)
class PaymentSettingsAdmin(RoleModelAdmin):
    roles = {Role.HOSPITAL_ADMIN}
    form = PaymentSettingsForm
    list_display = ("provider", "sandbox_merchant_id", "wechat_mchid", "changed_at")

    @admin.display(description=_("updated at"), ordering="updated_at")
    def changed_at(self, obj):
        return obj.updated_at  # the field has no verbose name of its own

    def has_add_permission(self, request):
        return not PaymentSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------------- reconciliation
