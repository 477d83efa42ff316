"""Two admin sites: the platform's (operators only) and each hospital's (its staff only).

A hospital's admin admits a signed-in user only with an active StaffMembership at *that*
hospital (the request's tenant), and shows each role only the apps it works in.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.accounts.forms import PhoneField
from portal.accounts.models import StaffMembership
from portal.accounts.selectors import staff_role
from portal.money import fen_to_yuan, yuan_to_fen

Role = StaffMembership.Role

# Which apps each role works in; hospital admins see everything.
ROLE_APPS: dict[str, set[str]] = {
    Role.REGISTRAR: {"registration"},
    Role.FINANCE: {"payments"},
    Role.DOCTOR: {"consult"},
}


def role_may_use_app(role: str | None, app_label: str) -> bool:
    if role is None:
        return False
    return role == Role.HOSPITAL_ADMIN or app_label in ROLE_APPS.get(role, set())


class PlatformLoginForm(AdminAuthenticationForm):
    username = PhoneField(label=_("Mobile number"), max_length=20)
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _("Please enter the mobile number and password of a platform operator."),
    }


class HospitalLoginForm(AdminAuthenticationForm):
    username = PhoneField(label=_("Mobile number"), max_length=20)
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _("Please enter the mobile number and password of a staff account of "
                           "this hospital."),
    }

    def confirm_login_allowed(self, user):
        if not user.is_active:
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        tenant = getattr(self.request, "tenant", None)
        if tenant is None or not StaffMembership.objects.filter(
                user=user, hospital_id=tenant.pk, is_active=True).exists():
            raise forms.ValidationError(self.error_messages["invalid_login"],
                                        code="invalid_login",
                                        params={"username": self.username_field.verbose_name})


class PlatformAdminSite(admin.AdminSite):
    site_header = _("Hospital portal · platform admin")
    site_title = _("Platform admin")
    index_title = _("Platform")
    login_form = PlatformLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        tenant = getattr(request, "tenant", None)
        return bool(request.user.is_active and request.user.is_staff
                    and tenant is not None and tenant.is_public)


class HospitalAdminSite(admin.AdminSite):
    site_title = _("Hospital admin")
    index_title = _("Hospital administration")
    login_form = HospitalLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        return staff_role(request) is not None

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        role = staff_role(request)
        if tenant is not None:
            context["site_header"] = tenant.display_name
        context["staff_role"] = Role(role).label if role else ""
        return context

    def get_urls(self):
        """Django's, except that a model admin with an `admin_url_path` (e.g.
        "payments/clinicbill/") is served there instead of at app_label/model_name/: a model
        that moved to another app keeps the admin address staff bookmarked and scripts use.
        The URL names stay Django's (app_label_model_name_changelist and the rest)."""
        from django.urls import include, path

        kept = {f"{model._meta.app_label}/{model._meta.model_name}/": model_admin
                for model, model_admin in self._registry.items()
                if getattr(model_admin, "admin_url_path", "")}
        return [path(kept[str(p.pattern)].admin_url_path, include(kept[str(p.pattern)].urls))
                if str(p.pattern) in kept else p for p in super().get_urls()]


class RoleModelAdmin(admin.ModelAdmin):
    """A hospital ModelAdmin: usable by hospital admins and the roles that work in its app.

    `roles` narrows it further (e.g. roles = {Role.HOSPITAL_ADMIN}); `read_only_roles` may
    look but not change.
    """

    roles: set[str] | None = None
    read_only_roles: set[str] = set()

    def _role_allowed(self, request: HttpRequest) -> bool:
        role = staff_role(request)
        if self.roles is not None:
            return role in self.roles or role in self.read_only_roles
        return role in self.read_only_roles or role_may_use_app(role, self.opts.app_label)

    def _may_write(self, request: HttpRequest) -> bool:
        return self._role_allowed(request) and staff_role(request) not in self.read_only_roles

    def has_module_permission(self, request):
        return self._role_allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._role_allowed(request)

    def has_add_permission(self, request):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request)


class PlatformModelAdmin(admin.ModelAdmin):
    """Platform operators manage everything on the platform site."""

    def has_module_permission(self, request):
        return platform_admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return platform_admin_site.has_permission(request)

    def has_add_permission(self, request):
        return platform_admin_site.has_permission(request)

    def has_change_permission(self, request, obj=None):
        return platform_admin_site.has_permission(request)

    def has_delete_permission(self, request, obj=None):
        return platform_admin_site.has_permission(request)


class RoleInline:
    """Inlines follow their parent admin's role rules (Django's default asks auth model
    permissions, which hospital staff do not have: the inline would silently disappear)."""

    def _parent_admin(self):
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request, obj=None):
        return self._parent_admin().has_view_permission(request, obj)


class EditableInline(RoleInline):
    """An inline whose rows may be added, changed and deleted by whoever may change the parent."""

    def has_add_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)


class ReadOnlyPermissions:
    """Look, never change: for rows written only by services and workers (logs, audit
    trails, results). Put it before the ModelAdmin or inline base it narrows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyModelAdmin(ReadOnlyPermissions, RoleModelAdmin):
    """A hospital ModelAdmin its roles may only look at."""


class ReadOnlyInline(ReadOnlyPermissions, RoleInline, admin.TabularInline):
    extra = 0
    can_delete = False


def yuan_column(field: str, label, ordering: str | None = None):
    """A list column showing an integer-fen attribute as ¥12.50 (empty stays empty)."""

    @admin.display(description=label, ordering=ordering or field)
    def show(self, obj):
        fen = getattr(obj, field)
        return "—" if fen is None else f"¥{fen_to_yuan(fen)}"

    return show


class YuanField(forms.Field):
    """Money typed in yuan ("12.50"; "45" is ¥45.00, never 45 fen), cleaned to integer fen;
    empty → None when optional."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "size": 10})

    def to_python(self, value):
        value = str(value).strip() if value is not None else ""
        return None if value in self.empty_values else yuan_to_fen(value)

    def prepare_value(self, value):
        return fen_to_yuan(value) if isinstance(value, int) else value


# How many objects an action's intermediate page and its report name before "…".
NAMES_AT_MOST = 20


def names_at_most(objects, describe=str) -> str:
    """The objects an action worked on, for its report: "a; b; … (+3)"."""
    shown = [describe(o) for o in objects[:NAMES_AT_MOST]]
    more = len(objects) - len(shown)
    return "; ".join(shown) + (f"; … (+{more})" if more > 0 else "")


def action_page(modeladmin, request, queryset, *, form, title, intro, submit, describe=str):
    """The intermediate page of an action: what is selected, a form, and a button that posts
    the same action back (to the list or to the object's page, wherever it came from).

    The action shows it until its form is valid: `form = F(request.POST if "apply" in
    request.POST else None)`; the page posts "apply" with the form.
    """
    field = ("CHANGE_FORM-action" if "CHANGE_FORM-action" in request.POST else "action")
    objects = list(queryset)
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts, "title": title, "intro": intro, "form": form,
        "objects": [describe(o) for o in objects[:NAMES_AT_MOST]],
        "more": max(0, len(objects) - NAMES_AT_MOST),
        "selected": [o.pk for o in objects], "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_field": field, "action": request.POST.get(field, ""), "submit": submit,
        "media": modeladmin.media + form.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/action_form.html", context)


# Words for the codes an audit trail stores (actions that are not also a status, and sources).
AUDIT_ACTIONS = {
    "created": _("Created"),
    "payment_started": _("Payment started"),
    "payment_mismatch": _("Payment amount mismatch"),
    "duplicate_payment": _("Duplicate payment"),
    "paid_after_close": _("Paid after closing"),
    "refund_requested": _("Refund requested"),
    "refund_failed": _("Refund failed"),
    "held": _("Place held"),
}
AUDIT_SOURCES = {
    "patient": pgettext_lazy("audit source", "Patient"),
    "staff": _("Staff"),
    "provider": _("Payment provider"),
    "system": _("System"),
    "web": _("Patient (web)"),
    "waitlist": _("Waitlist"),
}


class AuditTrailInline(ReadOnlyInline):
    """Who changed what, when: the event rows of an order or a booking.

    Rows store codes ("paid", "provider"); staff read them in words, in their language, with
    statuses named as on the order or booking itself.
    """

    fields = ("at", "action_label", "from_label", "to_label", "source_label", "actor",
              "detail_text")
    readonly_fields = fields
    verbose_name_plural = _("audit trail")
    classes = ["audit-trail"]

    class Media:
        css = {"all": ["css/admin-audit.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def _status(self, code: str) -> str:
        status = getattr(self.parent_model, "Status", None)
        labels = dict(status.choices) if status is not None else {}
        return str(labels.get(code, code)) if code else "-"

    @admin.display(description=_("action"))
    def action_label(self, obj) -> str:
        label = AUDIT_ACTIONS.get(obj.action)
        return str(label) if label is not None else self._status(obj.action)

    @admin.display(description=_("from status"))
    def from_label(self, obj) -> str:
        return self._status(obj.from_status)

    @admin.display(description=_("to status"))
    def to_label(self, obj) -> str:
        return self._status(obj.to_status)

    @admin.display(description=_("source"))
    def source_label(self, obj) -> str:
        return str(AUDIT_SOURCES.get(obj.source, obj.source))

    @admin.display(description=_("detail"))
    def detail_text(self, obj) -> str:
        return json.dumps(obj.detail, ensure_ascii=False, sort_keys=True) if obj.detail else "-"


platform_admin_site = PlatformAdminSite(name="platform_admin")
hospital_admin_site = HospitalAdminSite(name="hospital_admin")
