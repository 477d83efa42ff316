from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .models import FamilyMember
from .services import IDENTITY_FIELDS, identity_locked_message
from .validators import normalize_mobile, validate_id_number, validate_mobile

_PHONE_ATTRS = {"autocomplete": "tel", "inputmode": "tel", "placeholder": "13800138000"}


class PhoneField(forms.CharField):
    default_validators = [validate_mobile]

    def to_python(self, value):
        return normalize_mobile(super().to_python(value))


class SignupForm(forms.Form):
    phone = PhoneField(label=_("Mobile number"), max_length=20, widget=forms.TextInput(_PHONE_ATTRS))
    name = forms.CharField(label=_("Your name"), max_length=50, required=False,
                           widget=forms.TextInput({"autocomplete": "name"}))
    password1 = forms.CharField(label=_("Password"), strip=False,
                                widget=forms.PasswordInput({"autocomplete": "new-password"}),
                                help_text=_("At least 8 characters, not only digits."))
    password2 = forms.CharField(label=_("Password again"), strip=False,
                                widget=forms.PasswordInput({"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords do not match."))
        elif p1:
            try:
                password_validation.validate_password(p1)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class PhoneLoginForm(AuthenticationForm):
    username = PhoneField(label=_("Mobile number"), max_length=20,
                          widget=forms.TextInput({**_PHONE_ATTRS, "autofocus": True}))
    error_messages = {
        "invalid_login": _("The mobile number or password is not correct."),
        "inactive": _("This account is disabled."),
    }


class FamilyMemberForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=50,
                           help_text=_("As on the resident ID card."))
    relation = forms.ChoiceField(label=_("Relation to you"), choices=FamilyMember.Relation.choices)
    id_number = forms.CharField(label=_("Resident ID number"), max_length=18, min_length=1,
                                validators=[validate_id_number],
                                widget=forms.TextInput({"autocomplete": "off",
                                                        "spellcheck": "false"}),
                                help_text=_("18 characters. Sex and birth date are read from it."))
    phone = PhoneField(label=_("Mobile number"), max_length=20, required=False,
                       widget=forms.TextInput(_PHONE_ATTRS),
                       help_text=_("Optional: for visit reminders to this person."))

    def __init__(self, *args, member: FamilyMember | None = None, identity_locked: bool = False,
                 **kwargs):
        """`identity_locked`: a hospital keeps records of the member, so name and ID number are
        shown read-only (the service refuses a changed value all the same)."""
        super().__init__(*args, **kwargs)
        self.member = member
        if member is not None:
            # Editing: the number is never sent back to the page in full (shared phones,
            # screenshots); the masked value, or nothing, keeps it.
            field = self.fields["id_number"]
            field.required, field.validators = False, []
            field.help_text = _("Shown masked. Leave it as it is to keep the number, or type "
                                "the full new number.")
            self.initial["id_number"] = member.masked_id_number
            if member.phone:  # the same for the member's mobile number
                phone = self.fields["phone"]
                phone.validators, phone.help_text = [], field.help_text
                self.initial["phone"] = member.masked_phone
            if identity_locked:
                for name in IDENTITY_FIELDS:
                    self.fields[name].widget.attrs["readonly"] = True
                    self.fields[name].help_text = identity_locked_message()

    def clean_phone(self):
        value = self.cleaned_data["phone"]
        if self.member is not None and self.member.phone:
            if value == self.member.masked_phone:
                return self.member.phone
            if value:
                validate_mobile(value)
        return value

    def clean_id_number(self):
        value = self.cleaned_data["id_number"].strip().upper()
        if self.member is not None:
            if value in ("", self.member.masked_id_number):
                return self.member.id_number
            validate_id_number(value)
        return value
