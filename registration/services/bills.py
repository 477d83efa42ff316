"""Clinic bills (诊间支付): staff raise a bill, the patient sees the insurance split and pays
the self-paid part on the phone. State changes of bills live here (services of this module).

A bill pays through payments: an `Order` of kind clinic_bill for the self-paid part, and
payments' insurance engine for the split, given plain items (class and amount in fen).
What a paid or closed bill order does is registered with payments below
(`on_order_paid` / `on_order_closed`), imported from `RegistrationConfig.ready()`.

Imports are absolute so that the module can move into a `registration/services/` package."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from payments import services
from payments.insurance import (
    BillItem,
    InsurancePolicy,
    InsuranceType,
    Settlement,
    YearToDate,
    settle,
    settlement_to_dict,
)
from payments.models import Order
from portal.errors import DomainError
from registration.models import ClinicBill, ClinicBillItem

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
    first_issue = not bill.items.exists()
    bill.items.all().delete()
    ClinicBillItem.objects.bulk_create(rows)
    bill.total_fen = sum(r.amount_fen for r in rows)
    bill.save(update_fields=["total_fen"])
    if first_issue and bill.total_fen > 0:
        from portal.money import fen_to_yuan
        from portal.notifications.services import notify

        member = bill.patient_card.family_member
        notify(kind="clinic_bill_issued", hospital=connection.tenant,
               recipients=[member.account_id],
               context={"amount": f"¥{fen_to_yuan(bill.total_fen)}", "name": member.name},
               link=f"/payments/bills/{bill.bill_no}/")
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


def _insurance_items(bill: ClinicBill) -> list[BillItem]:
    """A bill's items as payments' insurance engine takes them: plain values, no rows."""
    return [BillItem(item_class=i.item_class, amount_fen=i.amount_fen, name=i.name)
            for i in bill.items.all()]


def clinic_bill_presettle(*, bill: ClinicBill, insurance_type: str) -> Settlement:
    """The split the patient would pay now (nothing is stored)."""
    kind = InsuranceType.parse(insurance_type)
    return settle(_insurance_items(bill), insurance_type=kind, policy=insurance_policy(),
                  year_to_date=year_to_date(patient_card=bill.patient_card,
                                            insurance_type=str(kind)))


def insurance_gateway():
    """The insurer's settlement service when this hospital has one configured, else None
    (then the split is calculated here with the hospital's policy)."""
    from payments.insurance_gateway import HttpInsuranceGateway

    row = services.payment_settings()
    if not row.insurance_gateway_url:
        return None
    return HttpInsuranceGateway(row.insurance_gateway_url, row.insurance_api_key)


def _pre_settle_with_insurer(bill: ClinicBill, insurance_type: str):
    """Ask the insurer (outside any transaction: it is a network call) when one is configured."""
    gateway = insurance_gateway()
    if gateway is None or InsuranceType.parse(insurance_type) is InsuranceType.NONE:
        return None
    return gateway.pre_settle(bill_no=bill.bill_no,
                              patient_id=bill.patient_card.family_member.id_number,
                              insurance_type=insurance_type, items=_insurance_items(bill))


def clinic_bill_checkout(*, bill: ClinicBill, insurance_type: str, payer) -> Order:
    """Fix the split and open (or reuse) the order for the self-paid part.

    With an insurer configured, its pre-settlement (which reserves the patient's deductible
    and cap) decides the split; it is settled when the payment succeeds and reversed when the
    order closes unpaid.
    """
    insurer = _pre_settle_with_insurer(bill, insurance_type)
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
        split = insurer.settlement if insurer else clinic_bill_presettle(
            bill=bill, insurance_type=insurance_type)
        with translation.override(settings.LANGUAGE_CODE):  # a record: the hospital's language
            description = _("Clinic bill %(no)s") % {"no": bill.bill_no}
        order = services.order_create(
            kind=Order.Kind.CLINIC_BILL, description=description,
            payer=payer, total_fen=split.total_fen, insurance_fen=split.insurance_fen,
            expires_in=timedelta(minutes=BILL_PAY_MINUTES))
        bill.order, bill.status = order, ClinicBill.Status.PAYING
        bill.insurance_type, bill.settlement = str(split.insurance_type), settlement_to_dict(split)
        bill.insurance_settlement_id = insurer.settlement_id if insurer else ""
        bill.insurance_status = "pending" if insurer else ""
        bill.save(update_fields=["order", "status", "insurance_type", "settlement",
                                 "insurance_settlement_id", "insurance_status"])
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
        # Cancelled while the patient was paying: give the money back, recorded with this
        # payment under its lock and submitted after commit (payments' one refund path).
        services.refund_gone_locked(order=order, amount_fen=order.self_pay_fen,
                                    reason=_("Bill cancelled before payment arrived."),
                                    key="bill-cancelled")
        return
    bill.status, bill.paid_at = ClinicBill.Status.PAID, order.paid_at or timezone.now()
    bill.save(update_fields=["status", "paid_at"])
    if bill.insurance_settlement_id:
        pk = bill.pk
        transaction.on_commit(lambda: clinic_bill_insurance_sync(bill_id=pk))


@services.on_order_closed(Order.Kind.CLINIC_BILL)
def _bill_order_closed(order: Order) -> None:
    bill = ClinicBill.objects.select_for_update().filter(order=order).first()
    if bill is None:
        return
    if bill.status == ClinicBill.Status.PAYING:
        bill.status = ClinicBill.Status.UNPAID
        bill.save(update_fields=["status"])
    if bill.insurance_settlement_id and bill.insurance_status == "pending":
        pk = bill.pk
        transaction.on_commit(lambda: clinic_bill_insurance_sync(bill_id=pk))


def clinic_bill_insurance_sync(*, bill_id: int) -> str:
    """Settle (paid) or reverse (not paid) the insurer's pending settlement of a bill.

    Idempotent at the insurer; a failure leaves it pending for the next sweep.
    """
    from payments.insurance_gateway import InsuranceGatewayError

    bill = ClinicBill.objects.select_related("order").get(pk=bill_id)
    if not bill.insurance_settlement_id or bill.insurance_status != "pending":
        return bill.insurance_status
    gateway = insurance_gateway()
    if gateway is None:
        return bill.insurance_status
    paid = bill.status == ClinicBill.Status.PAID
    try:
        if paid:
            gateway.settle(bill.insurance_settlement_id)
        elif bill.order is None or bill.order.status == Order.Status.CLOSED:
            gateway.reverse(bill.insurance_settlement_id)
        else:
            return bill.insurance_status  # still being paid
    except InsuranceGatewayError:
        return bill.insurance_status  # retried by the sweeper
    status = "settled" if paid else "reversed"
    ClinicBill.objects.filter(pk=bill.pk, insurance_status="pending").update(
        insurance_status=status)
    return status


def bills_insurance_sweep() -> int:
    """Finish insurer settlements left pending (insurer down when the payment arrived)."""
    ids = list(ClinicBill.objects.filter(insurance_status="pending")
               .exclude(status=ClinicBill.Status.PAYING).values_list("pk", flat=True)[:200])
    return sum(clinic_bill_insurance_sync(bill_id=pk) != "pending" for pk in ids)


def bills_for_account(account) -> QuerySet[ClinicBill]:
    """Bills of the account's family members at this hospital (a selector)."""
    return (ClinicBill.objects.filter(patient_card__family_member__account=account)
            .exclude(status=ClinicBill.Status.CANCELLED)
            .select_related("patient_card__family_member", "department", "order")
            .order_by("-created_at"))


def clinic_bill_create_for_partner(*, partner, name: str, id_number: str, mobile: str,
                                   items: list[dict], department=None,
                                   doctor_name: str = "") -> ClinicBill:
    """A HIS pushes a bill through the partner API: the patient is found or created like a
    booking's, the bill goes through `clinic_bill_open` and `clinic_bill_set_items`, and the
    partner is remembered as its author — one transaction."""
    from portal.partners.models import PartnerRecord
    from portal.partners.services import patient_resolve, record_object
    from registration.services.patients import patient_card_for

    if not items:
        raise BillNotEditable(_("A bill needs at least one item."))
    with transaction.atomic():
        _account, member = patient_resolve(name=name, id_number=id_number, mobile=mobile)
        bill = clinic_bill_open(patient_card=patient_card_for(family_member=member),
                                department=department, doctor_name=doctor_name)
        bill = clinic_bill_set_items(bill=bill, items=items)
        record_object(partner=partner, hospital=connection.tenant,
                      kind=PartnerRecord.Kind.BILL, object_id=bill.pk)
    return bill
