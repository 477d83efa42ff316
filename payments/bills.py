"""Clinic bills (诊间支付): staff raise a bill, the patient sees the insurance split and pays
the self-paid part on the phone. State changes of bills live here (services of this module)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.errors import DomainError

from . import services
from .insurance import (
    InsurancePolicy,
    InsuranceType,
    Settlement,
    YearToDate,
    settle,
    settlement_to_dict,
)
from .models import ClinicBill, ClinicBillItem, Order

BILL_PAY_MINUTES = 30


class BillNotPayable(DomainError):
    code = "bill_not_payable"


class BillNotEditable(DomainError):
    code = "bill_not_editable"


def _bill_number() -> str:
    return "B" + timezone.now().strftime("%y%m%d%H%M%S") + secrets.token_hex(4).upper()


@transaction.atomic
def clinic_bill_open(*, patient_card, department=None, doctor_name: str = "", by=None) -> ClinicBill:
    return ClinicBill.objects.create(bill_no=_bill_number(), patient_card=patient_card,
                                     department=department, doctor_name=doctor_name,
                                     created_by=by)


@transaction.atomic
def clinic_bill_set_items(*, bill: ClinicBill, items: Iterable[dict]) -> ClinicBill:
    """Replace a bill's items (name, item_class, unit_price_fen, quantity); recompute the total."""
    bill = ClinicBill.objects.select_for_update().get(pk=bill.pk)
    if bill.status != ClinicBill.Status.UNPAID:
        raise BillNotEditable(_("A bill can only be changed while it is unpaid."))
    rows = []
    for item in items:
        price, qty = item["unit_price_fen"], item.get("quantity", 1)
        if not isinstance(price, int) or price < 0 or not isinstance(qty, int) or qty < 1:
            raise BillNotEditable(_("Item prices are whole fen and quantities at least 1."))
        rows.append(ClinicBillItem(bill=bill, name=item["name"], quantity=qty,
                                   item_class=item.get("item_class", ClinicBillItem.ItemClass.A),
                                   unit_price_fen=price, amount_fen=price * qty))
    bill.items.all().delete()
    ClinicBillItem.objects.bulk_create(rows)
    bill.total_fen = sum(r.amount_fen for r in rows)
    bill.save(update_fields=["total_fen"])
    return bill


@transaction.atomic
def clinic_bill_cancel(*, bill: ClinicBill, by=None) -> None:
    bill = ClinicBill.objects.select_for_update().get(pk=bill.pk)
    if bill.status not in (ClinicBill.Status.UNPAID, ClinicBill.Status.PAYING):
        raise BillNotEditable(_("Only unpaid bills can be cancelled."))
    if bill.order_id:
        services.order_close(order=bill.order, reason="bill cancelled", actor=by, source="staff")
    bill.status = ClinicBill.Status.CANCELLED
    bill.save(update_fields=["status"])


def insurance_policy() -> InsurancePolicy:
    row = services.payment_settings()
    return InsurancePolicy.from_dict(row.insurance_policy) if row.insurance_policy else InsurancePolicy()


def year_to_date(*, patient_card, insurance_type: str) -> YearToDate:
    """What this patient's insurance has counted this year at this hospital (local calculation)."""
    deductible = paid = 0
    start = timezone.localtime().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    for s in ClinicBill.objects.filter(patient_card=patient_card, status=ClinicBill.Status.PAID,
                                       insurance_type=insurance_type, paid_at__gte=start
                                       ).values_list("settlement", flat=True):
        deductible += s.get("deductible_fen", 0)
        paid += s.get("insurance_fen", 0)
    return YearToDate(deductible_met_fen=deductible, insurance_paid_fen=paid)


def clinic_bill_presettle(*, bill: ClinicBill, insurance_type: str) -> Settlement:
    """The split the patient would pay now (nothing is stored)."""
    items = list(bill.items.all())
    kind = InsuranceType.parse(insurance_type)
    return settle(items, insurance_type=kind, policy=insurance_policy(),
                  year_to_date=year_to_date(patient_card=bill.patient_card,
                                            insurance_type=str(kind)))


def clinic_bill_checkout(*, bill: ClinicBill, insurance_type: str, payer) -> Order:
    """Fix the split and open (or reuse) the order for the self-paid part."""
    with transaction.atomic():
        bill = (ClinicBill.objects.select_for_update(of=("self",))
                .select_related("order", "patient_card__family_member").get(pk=bill.pk))
        if bill.patient_card.family_member.account_id != payer.pk:
            raise BillNotPayable(_("This bill belongs to someone else."))
        if bill.status == ClinicBill.Status.PAYING and bill.order and \
                bill.order.status == Order.Status.CREATED and bill.order.expires_at > timezone.now() \
                and bill.insurance_type == insurance_type:
            return bill.order
        if bill.status not in (ClinicBill.Status.UNPAID, ClinicBill.Status.PAYING):
            raise BillNotPayable(_("This bill is not waiting for payment."))
        if bill.total_fen <= 0:
            raise BillNotPayable(_("This bill has nothing to pay."))
        if bill.order_id and bill.order.status == Order.Status.CREATED:
            services.order_close(order=bill.order, reason="replaced by a new checkout",
                                 actor=payer, source="patient")
        split = clinic_bill_presettle(bill=bill, insurance_type=insurance_type)
        order = services.order_create(
            kind=Order.Kind.CLINIC_BILL, description=_("Clinic bill %(no)s") % {"no": bill.bill_no},
            payer=payer, total_fen=split.total_fen, insurance_fen=split.insurance_fen,
            expires_in=timedelta(minutes=BILL_PAY_MINUTES))
        bill.order, bill.status = order, ClinicBill.Status.PAYING
        bill.insurance_type, bill.settlement = str(split.insurance_type), settlement_to_dict(split)
        bill.save(update_fields=["order", "status", "insurance_type", "settlement"])
    if order.self_pay_fen == 0:
        services.order_paid_without_provider(order=order)
        order.refresh_from_db()
    return order


@services.on_order_paid(Order.Kind.CLINIC_BILL)
def _bill_paid(order: Order) -> None:
    bill = ClinicBill.objects.select_for_update().filter(order=order).first()
    if bill is None:
        return
    if bill.status == ClinicBill.Status.CANCELLED:
        # Cancelled while the patient was paying: give the money back.
        transaction.on_commit(lambda: services.refund_request(
            order=Order.objects.get(pk=order.pk), amount_fen=order.self_pay_fen,
            reason=_("Bill cancelled before payment arrived."), source="system",
            idempotency_key="bill-cancelled"))
        return
    bill.status, bill.paid_at = ClinicBill.Status.PAID, order.paid_at or timezone.now()
    bill.save(update_fields=["status", "paid_at"])


@services.on_order_closed(Order.Kind.CLINIC_BILL)
def _bill_order_closed(order: Order) -> None:
    ClinicBill.objects.filter(order=order, status=ClinicBill.Status.PAYING).update(
        status=ClinicBill.Status.UNPAID)


def bills_for_account(account) -> QuerySet[ClinicBill]:
    """Bills of the account's family members at this hospital (a selector)."""
    return (ClinicBill.objects.filter(patient_card__family_member__account=account)
            .exclude(status=ClinicBill.Status.CANCELLED)
            .select_related("patient_card__family_member", "department", "order")
            .order_by("-created_at"))
