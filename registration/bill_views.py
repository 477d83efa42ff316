"""The patient's clinic bill pages (hospital host, under the site's /payments/ section):
the list, and one bill with its insurance split, checkout and receipt.

Paying goes through payments' order pages (`payments.views.order_pay`); the URL names stay
`payments:bills` and `payments:bill` (see registration/bill_urls.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy

from payments.insurance import InsuranceInputError, InsuranceType
from payments.models import Order
from payments.views import order_pay
from portal.errors import DomainError
from registration.models import ClinicBill
from registration.services import bills


class InsuranceChoiceForm(forms.Form):
    insurance_type = forms.ChoiceField(
        label=gettext_lazy("Pay with"), widget=forms.RadioSelect,
        choices=[(InsuranceType.NONE.value, gettext_lazy("Self-pay (no insurance)")),
                 (InsuranceType.EMPLOYEE.value, gettext_lazy("Employee medical insurance")),
                 (InsuranceType.RESIDENT.value, gettext_lazy("Resident medical insurance"))],
        initial=InsuranceType.NONE.value)


@login_required
def bill_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/bill_list.html",
                  {"bills": bills.bills_for_account(request.user)})


@login_required
def bill_detail(request: HttpRequest, bill_no: str) -> HttpResponse:
    """Unpaid: choose insurance, see the split, pay. Paid: the receipt."""
    bill = get_object_or_404(bills.bills_for_account(request.user), bill_no=bill_no)
    form = InsuranceChoiceForm(request.POST or request.GET or None,
                               initial={"insurance_type": bill.insurance_type or "none"})
    split = None
    payable = bill.status in (ClinicBill.Status.UNPAID, ClinicBill.Status.PAYING)
    if payable:
        kind = form.data.get("insurance_type") or bill.insurance_type or "none"
        try:
            split = bills.clinic_bill_presettle(bill=bill, insurance_type=kind)
        except InsuranceInputError as exc:
            form.add_error(None, exc.message)
    if request.method == "POST" and payable and form.is_valid():
        try:
            order = bills.clinic_bill_checkout(bill=bill, payer=request.user,
                                               insurance_type=form.cleaned_data["insurance_type"])
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("payments:bill", bill_no)
        if order.status == Order.Status.PAID:
            return redirect("payments:bill", bill_no)
        return order_pay(request, order.out_trade_no)
    return render(request, "registration/bill_detail.html", {
        "bill": bill, "items": bill.items.all(), "form": form, "split": split,
        "payable": payable, "receipt": bill.settlement if not payable else None})
