"""Sign-up, login, logout, password change and family members. Thin: parse, call, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from portal.errors import DomainError

from . import services, sso
from .forms import FamilyMemberForm, PhoneLoginForm, SignupForm
from .models import FamilyMember


def _on_hospital_site(request: HttpRequest) -> bool:
    tenant = getattr(request, "tenant", None)
    return tenant is not None and not tenant.is_public


def _safe_next(request: HttpRequest, default: str = "/") -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    # Besides this host, the platform may send people on to its own SSO endpoint only.
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return nxt
    return default


class LoginView(auth_views.LoginView):
    form_class = PhoneLoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def dispatch(self, request, *args, **kwargs):
        if _on_hospital_site(request):
            return HttpResponseRedirect(sso.hospital_login_url(request, _safe_next(request)))
        return super().dispatch(request, *args, **kwargs)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if _on_hospital_site(request):
        sso.end_parent_session(request)
    logout(request)
    messages.info(request, _("You have logged out."))
    return redirect("home")


@sensitive_post_parameters("password1", "password2")
def signup(request: HttpRequest) -> HttpResponse:
    if _on_hospital_site(request):
        back = request.build_absolute_uri(_safe_next(request))
        authorize = sso.platform_url(request, sso.AUTHORIZE_PATH, next=back)
        return HttpResponseRedirect(sso.platform_url(request, reverse("accounts:signup"),
                                                     next=authorize))
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.account_register(phone=form.cleaned_data["phone"],
                                             password=form.cleaned_data["password1"],
                                             name=form.cleaned_data["name"])
        except DomainError as exc:
            form.add_error("phone", exc.message)
        else:
            login(request, user, backend=sso.AUTH_BACKEND)
            messages.success(request, _("Welcome! Add the family members you book for."))
            nxt = _safe_next(request, "")
            return redirect(nxt or reverse("accounts:family"))
    return render(request, "accounts/signup.html", {"form": form, "next": _safe_next(request, "")})


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def dispatch(self, request, *args, **kwargs):
        if _on_hospital_site(request):
            return HttpResponseRedirect(sso.platform_url(request, reverse("accounts:password_change")))
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been changed."))
        return response


@login_required
def family(request: HttpRequest) -> HttpResponse:
    members = request.user.family_members.all()
    return render(request, "accounts/family_list.html",
                  {"members": members, "max_members": FamilyMember.MAX_PER_ACCOUNT})


def _member_form_page(request: HttpRequest, member: FamilyMember | None) -> HttpResponse:
    initial = None
    if member is not None:
        initial = {"name": member.name, "relation": member.relation, "phone": member.phone}
    locked = member is not None and services.family_member_has_records(member=member)
    form = FamilyMemberForm(request.POST or None, initial=initial, member=member,
                            identity_locked=locked)
    if request.method == "POST" and form.is_valid():
        try:
            if member is None:
                member = services.family_member_add(account=request.user, **form.cleaned_data)
                messages.success(request, _("%(name)s has been added.") % {"name": member.name})
            else:
                services.family_member_update(member=member, **form.cleaned_data)
                messages.success(request, _("%(name)s has been updated.") % {"name": member.name})
        except ValidationError as exc:
            form.add_error(None, exc)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("accounts:family")
    return render(request, "accounts/family_form.html", {"form": form, "member": member})


@login_required
@sensitive_post_parameters("id_number")
def family_add(request: HttpRequest) -> HttpResponse:
    return _member_form_page(request, None)


@login_required
@sensitive_post_parameters("id_number")
def family_edit(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(FamilyMember, pk=pk, account=request.user)
    return _member_form_page(request, member)


@login_required
def family_delete(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(FamilyMember, pk=pk, account=request.user)
    if request.method == "POST":
        try:
            services.family_member_remove(member=member)
        except DomainError as exc:
            return render(request, "accounts/family_confirm_delete.html",
                          {"member": member, "error": exc.message}, status=409)
        messages.success(request, _("%(name)s has been removed.") % {"name": member.name})
        return redirect("accounts:family")
    return render(request, "accounts/family_confirm_delete.html", {"member": member})
