"""The hospital's catalogue and patients, in the hospital's own schema."""

from __future__ import annotations

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Department(models.Model):
    """A clinical department; departments form a tree (内科 → 心内科)."""

    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children", verbose_name=_("parent department"))
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=50)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    intro = models.TextField(_("introduction"), blank=True)
    location = models.CharField(_("location"), max_length=100, blank=True,
                                help_text=_("Building, floor and room patients go to."))
    sort_order = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name


class PatientCard(models.Model):
    """This hospital's card for a platform family member (就诊卡), with its record number.

    Created the first time the member books here (the Registration issue). It refers to the
    public `accounts.FamilyMember`; the public schema never refers back.
    """

    family_member = models.OneToOneField("accounts.FamilyMember", on_delete=models.PROTECT,
                                         related_name="+", verbose_name=_("family member"))
    medical_record_number = models.CharField(_("medical record number"), max_length=20,
                                             unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("patient card")
        verbose_name_plural = _("patient cards")

    def __str__(self) -> str:
        return self.medical_record_number
