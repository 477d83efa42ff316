"""Every change to orders and refunds. Runs inside the hospital's schema.

Concurrency: an order row is locked (`select_for_update`) by every path that changes it:
callbacks, expiry, refunds, admin actions. Whichever of "payment arrives" and "hold expires"
takes the lock first wins, and the other sees the result: a payment for an order that was
closed first is accepted *and refunded*, never dropped.

Provider calls (HTTP) are made outside database transactions, so a slow provider never holds
a row lock; refunds are written first as PENDING rows and submitted after commit, and a
periodic job re-submits any that were left pending (providers are idempotent on the refund
number).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.db.inserts import InsertChain
from portal.errors import DomainError
from portal.process_cache import GenerationCache

from .models import Fen, Order, OrderEvent, PaymentNotification, PaymentSettings, Refund
from .providers.base import Notice, PaymentProvider, PaymentRequest, PaymentStart  # noqa: F401

log = logging.getLogger(__name__)


class OrderNotPayable(DomainError):
    code = "order_not_payable"


class RefundNotAllowed(DomainError):
    code = "refund_not_allowed"


class InvalidAmount(DomainError):
    code = "invalid_amount"


# Other apps register what happens when their kind of order is paid or closed
# (registration confirms a booking, a clinic bill becomes paid). Called inside the
# transaction that holds the order's lock.
_paid_handlers: dict[str, Callable[[Order], None]] = {}
_closed_handlers: dict[str, Callable[[Order], None]] = {}


def on_order_paid(kind: str):
    def register(fn: Callable[[Order], None]):
        _paid_handlers[kind] = fn
        return fn

    return register


def on_order_closed(kind: str):
    def register(fn: Callable[[Order], None]):
        _closed_handlers[kind] = fn
        return fn

    return register


# --------------------------------------------------------------------------- provider


def _not_configured() -> DomainError:
    return DomainError(_("Online payment is not set up for this hospital."),
                       code="payments_not_configured")


def payment_settings() -> PaymentSettings:
    obj = PaymentSettings.objects.order_by("pk").first()
    if obj is None:
        raise _not_configured()
    return obj


# The provider's name per hospital, kept by each process: every order records it, and a
# booking rush creates orders by the thousand. Saving or deleting a hospital's payment settings
# empties it in every process within a second (signal below, in ready()).
provider_name_cache = GenerationCache(generation_key="payments:provider-generation",
                                      ttl_seconds=60.0)


def _provider_name() -> str:
    """The configured provider's name only (every order records it; no secrets loaded)."""
    schema = connection.schema_name
    name = provider_name_cache.get(schema)
    if name is None:
        name = PaymentSettings.objects.order_by("pk").values_list("provider", flat=True).first()
        if name is None:
            raise _not_configured()
        provider_name_cache.put(schema, name)
    if not provider_usable(name):
        raise _not_configured()
    return name


def provider_usable(name: str) -> bool:
    """Whether a provider may take money here: one is chosen, and the sandbox (a training mode)
    only where PAYMENTS_SANDBOX_ENABLED allows it (production turns it off)."""
    if name == PaymentSettings.Provider.SANDBOX:
        return settings.PAYMENTS_SANDBOX_ENABLED
    return name in PaymentSettings.Provider.values


def provider_for(settings_row: PaymentSettings | None = None) -> PaymentProvider:
    """The adapter of the current hospital's configured provider."""
    row = settings_row or payment_settings()
    if not provider_usable(row.provider):
        raise _not_configured()
    if row.provider == PaymentSettings.Provider.WECHATPAY_V3:
        from .providers.wechatpay_v3 import WechatPayProvider

        return WechatPayProvider.from_settings(row)
    from .providers.sandbox import SandboxProvider

    return SandboxProvider(base_url=settings.SANDBOX_PAY_URL, mchid=row.sandbox_merchant_id,
                           api_key=row.sandbox_api_key)


def payment_settings_seed(*, merchant_id: str) -> PaymentSettings:
    """Default payment settings of a new hospital: the sandbox with its own merchant key where
    the sandbox is allowed (development, tests, training platforms); elsewhere no provider, so
    online payment stays off until staff choose one in admin."""
    from .providers.sandbox_protocol import merchant_key

    if not settings.PAYMENTS_SANDBOX_ENABLED:
        # Also undoes the sandbox row the early payments migration writes into every new
        # hospital schema (runs only while the hospital is being provisioned).
        row, _created = PaymentSettings.objects.update_or_create(pk=1, defaults={
            "provider": "", "sandbox_merchant_id": "", "sandbox_api_key": ""})
        return row
    row, _created = PaymentSettings.objects.get_or_create(
        pk=1, defaults={
            "provider": PaymentSettings.Provider.SANDBOX,
            "sandbox_merchant_id": merchant_id,
            "sandbox_api_key": merchant_key(settings.SANDBOX_PAY_MASTER_SECRET, merchant_id)})
    return row


def payment_settings_seed_for(hospital) -> PaymentSettings:
    """A new hospital's payment settings (registered with tenants' provisioning)."""
    return payment_settings_seed(merchant_id=f"sbx_{hospital.code}")


# --------------------------------------------------------------------------- orders


def _order_number() -> str:
    # 'P' + yymmddHHMMSS + 10 random hex = 23 chars: unique, sortable, within every provider's
    # 32-character limit, and no personal data in it.
    return "P" + timezone.now().strftime("%y%m%d%H%M%S") + secrets.token_hex(5).upper()


def _event(order: Order, action: str, *, source: str, actor=None, before: str = "",
           **detail) -> None:
    OrderEvent.objects.create(order=order, action=action, from_status=before,
                              to_status=order.status, actor=actor, source=source, detail=detail)


def order_create(*, kind: str, description: str, payer, total_fen: Fen, insurance_fen: Fen = 0,
                 expires_in: timedelta | None = None, rows: InsertChain | None = None) -> Order:
    """A new order awaiting payment, with its audit row.

    `rows`: the caller's InsertChain (see portal.db.inserts): the order and its audit row are
    added to it and written when the caller runs it, together with the caller's own rows;
    without one they are written here, in one statement.
    """
    if not isinstance(total_fen, int) or not isinstance(insurance_fen, int):
        raise InvalidAmount(_("Amounts are whole numbers of fen."))
    if total_fen <= 0 or insurance_fen < 0 or insurance_fen > total_fen:
        raise InvalidAmount(_("The amount to pay is not valid."))
    if kind not in Order.Kind.values:
        raise InvalidAmount(_("Unknown order kind."))
    if expires_in is None:
        expires_in = timedelta(minutes=getattr(connection.tenant, "hold_minutes", 15) or 15)
    provider = _provider_name()
    # Every refusal above happens before any write; the two rows go in one statement, so they
    # are written together without a transaction or savepoint of their own.
    own = rows is None
    rows = InsertChain() if own else rows
    order = rows.add(Order(
        out_trade_no=_order_number(), kind=kind, description=description[:127], payer=payer,
        total_fen=total_fen, insurance_fen=insurance_fen, self_pay_fen=total_fen - insurance_fen,
        provider=provider, expires_at=timezone.now() + expires_in))
    rows.add(OrderEvent(action="created", from_status="", to_status=order.status, actor=payer,
                        source="patient", detail={"total_fen": total_fen,
                                                  "insurance_fen": insurance_fen}),
             order=order)
    if own:
        rows.run()
    return order


def payment_start(*, order: Order, notify_url: str, return_url: str) -> PaymentStart:
    """Ask the provider for a cashier URL (or prepay data) for an open order."""
    if order.status != Order.Status.CREATED or order.expires_at <= timezone.now():
        raise OrderNotPayable(_("This order can no longer be paid."))
    if order.self_pay_fen == 0:
        raise OrderNotPayable(_("Nothing is left to pay online for this order."))
    start = provider_for().create_payment(PaymentRequest(
        out_trade_no=order.out_trade_no, amount_fen=order.self_pay_fen,
        description=order.description, notify_url=notify_url, return_url=return_url,
        expires_at=order.expires_at))
    with transaction.atomic():
        Order.objects.filter(pk=order.pk).update(notify_url=notify_url)
        _event(order, "payment_started", source="patient", actor=order.payer,
               before=order.status)
    return start


def order_paid_without_provider(*, order: Order) -> None:
    """An order with nothing to pay online (fully covered by insurance) is paid at once."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.CREATED or order.self_pay_fen != 0:
            raise OrderNotPayable(_("This order cannot be settled without payment."))
        order.status, order.paid_at = Order.Status.PAID, timezone.now()
        order.save(update_fields=["status", "paid_at", "updated_at"])
        _event(order, "paid", source="system", before=Order.Status.CREATED, amount_fen=0)
        _run_handler(_paid_handlers, order)


@transaction.atomic
def order_close(*, order: Order, reason: str, actor=None, source: str = "system") -> bool:
    """Close an unpaid order (expiry, cancellation). Returns False if it was no longer open."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status != Order.Status.CREATED:
        return False
    order.status, order.closed_at, order.close_reason = Order.Status.CLOSED, timezone.now(), reason
    order.save(update_fields=["status", "closed_at", "close_reason", "updated_at"])
    _event(order, "closed", source=source, actor=actor, before=Order.Status.CREATED, reason=reason)
    _run_handler(_closed_handlers, order)
    no = order.out_trade_no
    transaction.on_commit(lambda: _close_at_provider(no))
    return True


def _close_at_provider(out_trade_no: str) -> None:
    try:
        provider_for().close_order(out_trade_no)
    except Exception:  # best effort: a payment that still arrives is refunded on arrival
        log.warning("could not close order %s at the provider", out_trade_no)


def orders_close_expired(*, limit: int = 500) -> int:
    """Close open orders past their expiry (the sweeper's safety net)."""
    closed = 0
    ids = list(Order.objects.filter(status=Order.Status.CREATED, expires_at__lte=timezone.now())
               .values_list("pk", flat=True)[:limit])
    for pk in ids:
        closed += order_close(order=Order(pk=pk), reason="expired")
    return closed


def _run_handler(handlers: dict[str, Callable[[Order], None]], order: Order) -> None:
    handler = handlers.get(order.kind)
    if handler is not None:
        handler(order)


# --------------------------------------------------------------------------- callbacks


def notice_apply(*, provider: str, notice: Notice) -> str:
    """Apply one verified provider notification, exactly once. Returns what happened."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = PaymentNotification.objects.create(
                    provider=provider, notification_id=notice.notification_id, kind=notice.kind,
                    out_trade_no=notice.out_trade_no, body=notice.raw or {})
        except IntegrityError:
            return "duplicate"
        if notice.kind == "refund":
            outcome, refund_ids = _apply_refund_notice(notice), []
        else:
            outcome, refund_ids = _apply_payment_notice(notice)
        record.outcome = outcome
        record.save(update_fields=["outcome"])
    # A late payment's refund is submitted here, right after this transaction and before the
    # provider has our acknowledgement, even inside an enclosing transaction (tests run in
    # one: tests/payments/test_callbacks.py expects the provider's REFUND.SUCCESS at once).
    for refund_id in refund_ids:
        refund_submit(refund_id=refund_id)
    return outcome


def _apply_payment_notice(notice: Notice) -> tuple[str, list[int]]:
    order = Order.objects.select_for_update().filter(out_trade_no=notice.out_trade_no).first()
    if order is None:
        # Reconciliation lists it as "missing locally" and finance resolves it.
        log.error("payment notice for unknown order %s", notice.out_trade_no)
        return "unknown_order", []
    if notice.status != "paid":
        _event(order, f"provider_{notice.status}", source="provider", before=order.status)
        return f"ignored_{notice.status}", []
    if order.provider_txn_id and order.provider_txn_id == notice.provider_txn_id:
        return "already_applied", []
    if notice.amount_fen != order.self_pay_fen or notice.currency != order.currency:
        order.needs_attention = True
        order.attention_reason = _(
            "Provider reported %(paid)s %(cur)s for an order of %(due)s %(our)s.") % {
            "paid": notice.amount_fen, "cur": notice.currency, "due": order.self_pay_fen,
            "our": order.currency}
        order.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
        _event(order, "payment_mismatch", source="provider", before=order.status,
               paid_fen=notice.amount_fen, currency=notice.currency,
               provider_txn_id=notice.provider_txn_id)
        return "mismatch", []
    if order.provider_txn_id:  # paid twice under different transactions: refund the second
        _event(order, "duplicate_payment", source="provider", before=order.status,
               provider_txn_id=notice.provider_txn_id)
        order.needs_attention = True
        order.attention_reason = _("Paid twice; the second payment must be refunded.")
        order.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
        return "duplicate_payment", []

    before = order.status
    order.provider_txn_id = notice.provider_txn_id
    order.paid_at = notice.occurred_at or timezone.now()
    if before == Order.Status.CREATED:
        order.status = Order.Status.PAID
        order.save(update_fields=["status", "provider_txn_id", "paid_at", "updated_at"])
        _notify_order(order, "payment_succeeded", order.self_pay_fen)
        _event(order, "paid", source="provider", before=before, amount_fen=notice.amount_fen,
               provider_txn_id=notice.provider_txn_id)
        _run_handler(_paid_handlers, order)
        return "paid", []
    # Closed (expired or cancelled) before the money arrived: accept it and give it back.
    order.status = Order.Status.PAID
    order.save(update_fields=["status", "provider_txn_id", "paid_at", "updated_at"])
    _event(order, "paid_after_close", source="provider", before=before,
           amount_fen=notice.amount_fen, provider_txn_id=notice.provider_txn_id)
    refund = refund_gone_locked(order=order, amount_fen=order.self_pay_fen,
                                reason=_("Automatic refund: payment arrived after the order closed."),
                                key=f"late:{notice.provider_txn_id}", submit_after_commit=False)
    return "refunded_late_payment", [refund.pk] if refund else []


def _apply_refund_notice(notice: Notice) -> str:
    found = Refund.objects.filter(out_refund_no=notice.out_refund_no).values("pk", "order_id").first()
    if found is None:
        log.error("refund notice for unknown refund %s", notice.out_refund_no)
        return "unknown_refund"
    # Lock order before refund, the same order as every other path, so no two deadlock.
    Order.objects.select_for_update().get(pk=found["order_id"])
    refund = Refund.objects.select_for_update().get(pk=found["pk"])
    if notice.status == "succeeded":
        return "refunded" if _refund_succeeded(refund, notice.provider_refund_id) else "already_applied"
    if refund.status == Refund.Status.PENDING:
        _refund_failed(refund, "provider reported the refund failed")
    return "refund_failed"


# --------------------------------------------------------------------------- refunds


def _refund_create(*, order: Order, amount_fen: Fen, reason: str, actor, source: str,
                   key: str | None) -> Refund:
    """Within a transaction holding the order's lock: write a PENDING refund."""
    if key:
        out_refund_no = "R" + hashlib_hex(f"{order.out_trade_no}:{key}")[:31]
        existing = Refund.objects.filter(out_refund_no=out_refund_no).first()
        if existing is not None:
            return existing
    else:
        out_refund_no = "R" + timezone.now().strftime("%y%m%d%H%M%S") + secrets.token_hex(6).upper()
    pending = (order.refunds.filter(status=Refund.Status.PENDING)
               .aggregate(s=Sum("amount_fen"))["s"] or 0)
    if order.status not in (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED):
        raise RefundNotAllowed(_("Only paid orders can be refunded."))
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidAmount(_("The refund amount must be a positive number of fen."))
    if amount_fen > order.self_pay_fen - order.refunded_fen - pending:
        raise RefundNotAllowed(_("The refund is larger than what is left to refund."))
    refund = Refund.objects.create(order=order, out_refund_no=out_refund_no,
                                   amount_fen=amount_fen, reason=reason[:200],
                                   requested_by=actor)
    _event(order, "refund_requested", source=source, actor=actor, before=order.status,
           amount_fen=amount_fen, out_refund_no=out_refund_no, reason=reason)
    return refund


def refund_create_locked(*, order: Order, amount_fen: Fen, reason: str, source: str,
                         actor=None, key: str | None = None) -> Refund:
    """For other apps' services that already hold the order's row lock in their transaction:
    record a PENDING refund atomically with their own change; submit it after commit with
    `refund_submit` (the pending-refund sweeper covers a crash in between)."""
    return _refund_create(order=order, amount_fen=amount_fen, reason=reason, actor=actor,
                          source=source, key=key)


def refund_gone_locked(*, order: Order, reason: str, source: str = "system", actor=None,
                       key: str, amount_fen: Fen | None = None,
                       submit_after_commit: bool = True) -> Refund | None:
    """The one path for "money arrived (or stayed) for something that is gone: give it back".

    Call inside the caller's transaction while it holds the order's row lock (order first, as
    every path locks). Records a PENDING refund of `amount_fen` (default: everything still
    refundable) under the idempotency `key`, and after commit hands it to a worker, or submits
    it in-process if the broker is down; the pending-refund sweeper covers a crash in between.
    `submit_after_commit=False`: the caller submits it itself with `refund_submit` right after
    its transaction (`notice_apply` does, for a payment that arrived after its order closed).
    Returns None when nothing is left to refund."""
    amount = order.refundable_fen if amount_fen is None else amount_fen
    if amount <= 0:
        return None
    refund = _refund_create(order=order, amount_fen=amount, reason=reason, actor=actor,
                            source=source, key=key)
    refund_id = refund.pk
    if submit_after_commit:
        transaction.on_commit(lambda: refund_submit_later(refund_id=refund_id))
    return refund


def refund_submit_later(*, refund_id: int) -> None:
    """Hand a pending refund to a worker; if the broker is down, submit it here and now."""
    from .tasks import refund_submit as refund_submit_task

    try:
        refund_submit_task.delay(refund_id)
    except Exception:
        log.warning("broker unavailable; submitting refund %s in-process", refund_id)
        refund_submit(refund_id=refund_id)


def hashlib_hex(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest().upper()


def refund_request(*, order: Order, amount_fen: Fen, reason: str, actor=None,
                   source: str = "staff", idempotency_key: str | None = None) -> Refund:
    """Refund part or all of a paid order. Idempotent for the same `idempotency_key`."""
    if not (reason or "").strip():
        raise RefundNotAllowed(_("A refund needs a reason."))
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        refund = _refund_create(order=locked, amount_fen=amount_fen, reason=reason.strip(),
                                actor=actor, source=source, key=idempotency_key)
    if refund.status == Refund.Status.PENDING:
        refund_submit(refund_id=refund.pk)
        refund.refresh_from_db()
    return refund


def refund_submit(*, refund_id: int) -> None:
    """Send a pending refund to the provider (safe to repeat: the refund number is the key)."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return
    order = refund.order
    try:
        result = provider_for().refund(
            out_trade_no=order.out_trade_no, out_refund_no=refund.out_refund_no,
            amount_fen=refund.amount_fen, total_fen=order.self_pay_fen, reason=refund.reason,
            notify_url=order.notify_url or "")
    except DomainError as exc:  # provider unreachable: stays pending, retried by the sweeper
        log.warning("refund %s not submitted: %s", refund.out_refund_no, exc.message)
        return
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order.pk)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if result.status == "succeeded":
            _refund_succeeded(refund, result.provider_refund_id)
        elif result.status == "failed":
            _refund_failed(refund, result.failure_reason)
        elif result.provider_refund_id and not refund.provider_refund_id:
            refund.provider_refund_id = result.provider_refund_id
            refund.save(update_fields=["provider_refund_id"])


def _refund_succeeded(refund: Refund, provider_refund_id: str) -> bool:
    if refund.status == Refund.Status.SUCCEEDED:
        return False
    order = Order.objects.select_for_update().get(pk=refund.order_id)
    refund.status, refund.succeeded_at = Refund.Status.SUCCEEDED, timezone.now()
    refund.provider_refund_id = provider_refund_id or refund.provider_refund_id
    refund.save(update_fields=["status", "succeeded_at", "provider_refund_id"])
    before = order.status
    order.refunded_fen += refund.amount_fen
    order.status = (Order.Status.REFUNDED if order.refunded_fen >= order.self_pay_fen
                    else Order.Status.PARTIALLY_REFUNDED)
    order.save(update_fields=["refunded_fen", "status", "updated_at"])
    _event(order, "refunded", source="provider", before=before, amount_fen=refund.amount_fen,
           out_refund_no=refund.out_refund_no)
    _notify_order(order, "payment_refunded", refund.amount_fen)
    return True


def _notify_order(order: Order, kind: str, amount_fen: Fen) -> None:
    """Tell the payer, through the outbox, in the transaction that moved the money."""
    from portal.money import fen_to_yuan
    from portal.notifications.services import notify

    notify(kind=kind, hospital=connection.tenant, recipients=[order.payer_id],
           context={"amount": f"¥{fen_to_yuan(amount_fen)}", "description": order.description,
                    "order": order.out_trade_no},
           link=f"/payments/orders/{order.out_trade_no}/")


def _refund_failed(refund: Refund, reason: str) -> None:
    refund.status, refund.failure_reason = Refund.Status.FAILED, reason[:200]
    refund.save(update_fields=["status", "failure_reason"])
    order = Order.objects.select_for_update().get(pk=refund.order_id)
    order.needs_attention = True
    order.attention_reason = _("Refund %(no)s failed: %(why)s") % {"no": refund.out_refund_no,
                                                                   "why": reason}
    order.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
    _event(order, "refund_failed", source="provider", before=order.status,
           out_refund_no=refund.out_refund_no, reason=reason)


def refunds_retry_pending(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    ids = list(Refund.objects.filter(status=Refund.Status.PENDING,
                                     created_at__lte=timezone.now() - older_than)
               .values_list("pk", flat=True)[:200])
    for pk in ids:
        refund_submit(refund_id=pk)
    return len(ids)


def payment_sync(*, order: Order) -> str:
    """Ask the provider about an order (the patient came back before the callback did)."""
    status = provider_for().query_order(order.out_trade_no)
    if status.status != "paid" or not status.provider_txn_id:
        return status.status
    from .providers.base import Notice

    return notice_apply(provider=order.provider, notice=Notice(
        notification_id=f"query:{status.provider_txn_id}", kind="payment",
        out_trade_no=order.out_trade_no, status="paid", amount_fen=status.amount_fen,
        currency=order.currency, provider_txn_id=status.provider_txn_id,
        occurred_at=status.paid_at, raw={"source": "query"}))
