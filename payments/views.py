"""Patient-facing payment pages and the provider's notify endpoint (hospital host)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.errors import DomainError

from . import services
from .models import Order
from .providers.base import InvalidSignature

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def notify(request: HttpRequest, provider: str) -> HttpResponse:
    """The provider's asynchronous callback. Forged → 401 and nothing changes."""
    try:
        row = services.payment_settings()
    except DomainError:
        raise Http404 from None
    if row.provider != provider:
        raise Http404
    adapter = services.provider_for(row)
    try:
        notice = adapter.parse_callback(request.headers, request.body)
    except InvalidSignature as exc:
        log.warning("rejected %s callback: %s", provider, exc)
        ack = adapter.ack(False, "signature verification failed")
        return HttpResponse(ack.body, status=401, content_type=ack.content_type)
    outcome = services.notice_apply(provider=provider, notice=notice)
    log.info("%s callback %s for %s: %s", provider, notice.notification_id, notice.out_trade_no,
             outcome)
    ack = adapter.ack(True)
    return HttpResponse(ack.body, status=ack.status, content_type=ack.content_type)


def _own_order(request: HttpRequest, out_trade_no: str) -> Order:
    return get_object_or_404(Order, out_trade_no=out_trade_no, payer=request.user)


def order_next_url(order: Order) -> str:
    """Where the patient should land after paying: the thing they paid for."""
    if order.kind == Order.Kind.CLINIC_BILL and hasattr(order, "clinic_bill"):
        return reverse("payments:bill", args=[order.clinic_bill.bill_no])
    if order.kind == Order.Kind.REGISTRATION and hasattr(order, "booking"):
        # The booking page shows the outcome: confirmed with its queue number, or expired.
        return reverse("registration:booking", args=[order.booking.pk])
    if order.kind == Order.Kind.CONSULTATION and hasattr(order, "consultation"):
        return reverse("consult:detail", args=[order.consultation.pk])
    return reverse("payments:order", args=[order.out_trade_no])


@login_required
def order_detail(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    order = _own_order(request, out_trade_no)
    # Messages about a payment or a refund lead here: and from here to what it paid for.
    paid_for = order_next_url(order)
    return render(request, "payments/order_detail.html", {
        "order": order,
        "paid_for_url": "" if paid_for == request.path else paid_for,
        "paid_for_label": (gettext("View the clinic bill")
                           if order.kind == Order.Kind.CLINIC_BILL else gettext("View the booking"))})


@login_required
@require_POST
def order_pay(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    order = _own_order(request, out_trade_no)
    try:
        start = services.payment_start(
            order=order,
            notify_url=request.build_absolute_uri(reverse("payments:notify",
                                                          args=[order.provider])),
            return_url=request.build_absolute_uri(reverse("payments:order_return",
                                                          args=[order.out_trade_no])))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(order_next_url(order))
    if start.cashier_url:
        return redirect(start.cashier_url)
    return render(request, "payments/order_detail.html", {"order": order, "prepay": start.prepay})


@login_required
def order_return(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    """Back from the cashier: ask the provider at once rather than wait for the callback."""
    order = _own_order(request, out_trade_no)
    if order.status == Order.Status.CREATED and request.GET.get("result") == "paid":
        try:
            services.payment_sync(order=order)
        except DomainError:
            pass  # the callback will still arrive; the page says "confirming"
    elif request.GET.get("result") in ("declined", "abandoned"):
        messages.warning(request, _not_paid_message())
    return redirect(order_next_url(order))


def _not_paid_message() -> str:
    from django.utils.translation import gettext as _

    return _("The payment was not completed. You can try again before the order expires.")
