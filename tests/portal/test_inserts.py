"""portal.db.inserts.InsertChain: new rows of several tables in one statement.

The booking path writes its order, booking, audit rows and outbox event this way; these tests
hold the chain to what save() would have written, and to all-or-nothing.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Order, OrderEvent
from portal.db.inserts import IdText, InsertChain
from portal.notifications.models import OutboxEvent
from tests.helpers import in_schema, make_user


def _order(payer, **kw) -> Order:
    kw.setdefault("expires_at", timezone.now())
    return Order(out_trade_no=kw.pop("no", "PCHAIN0001"), kind=Order.Kind.REGISTRATION,
                 description="挂号", payer=payer, total_fen=2000, self_pay_fen=2000,
                 provider="sandbox", **kw)


def test_inserts_rows_of_three_tables_in_one_statement(hospital_a):
    payer = make_user(name="链式")
    with in_schema(hospital_a):
        rows = InsertChain()
        order = rows.add(_order(payer))
        event = rows.add(OrderEvent(action="created", to_status="created", actor=payer,
                                    source="patient", detail={"total_fen": 2000}), order=order)
        outbox = rows.add(OutboxEvent(kind="test_chain", recipients=[payer.pk],
                                      context={"n": 1}),
                          link=IdText("/orders/{}/", order))
        list(Order.objects.all()[:1])  # the search path is sent before, not counted below
        with CaptureQueriesContext(connection) as ctx:
            rows.run()
        assert len(ctx.captured_queries) == 1, ctx.captured_queries
        assert ctx.captured_queries[0]["sql"].startswith("WITH _row0 AS (INSERT INTO")
        # Every object has its id and is a saved instance, references resolved in place.
        assert order.pk and event.pk and outbox.pk
        assert not order._state.adding and order._state.db == "default"
        assert event.order_id == order.pk and event.order is order
        assert outbox.link == f"/orders/{order.pk}/"
        # What the database holds is what save() would have written (defaults, auto_now,
        # JSON), read back fresh.
        stored = Order.objects.get(pk=order.pk)
        assert (stored.status, stored.currency, stored.refunded_fen) == ("created", "CNY", 0)
        assert stored.created_at is not None and stored.updated_at is not None
        stored_event = OrderEvent.objects.get(pk=event.pk)
        assert (stored_event.order_id, stored_event.detail) == (order.pk, {"total_fen": 2000})
        stored_outbox = OutboxEvent.objects.get(pk=outbox.pk)
        assert stored_outbox.link == f"/orders/{order.pk}/"
        assert stored_outbox.recipients == [payer.pk] and stored_outbox.created_at is not None


def test_inserts_all_or_nothing(hospital_a):
    payer = make_user(name="链式二")
    with in_schema(hospital_a):
        _order(payer, no="PCHAINDUP").save()
        before = (Order.objects.count(), OrderEvent.objects.count(), OutboxEvent.objects.count())
        rows = InsertChain()
        first = rows.add(_order(payer, no="PCHAINNEW"))
        rows.add(OutboxEvent(kind="test_chain", recipients=[payer.pk]), link=IdText("/{}/", first))
        rows.add(_order(payer, no="PCHAINDUP"))  # the last row breaks a unique constraint
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.run()
        assert (Order.objects.count(), OrderEvent.objects.count(),
                OutboxEvent.objects.count()) == before
        assert not Order.objects.filter(out_trade_no="PCHAINNEW").exists()


def test_inserts_refuses_what_it_cannot_write_like_save(hospital_a):
    from portal.notifications.models import NotificationTemplate  # overrides save()

    payer = make_user(name="链式三")
    with in_schema(hospital_a):
        rows = InsertChain()
        with pytest.raises(TypeError, match="overrides save"):
            rows.add(NotificationTemplate())
        order = _order(payer)
        with pytest.raises(ValueError, match="not added"):
            rows.add(OrderEvent(action="created", source="patient"), order=order)
        saved = _order(payer, no="PCHAINSAVED")
        saved.save()
        with pytest.raises(ValueError, match="already saved"):
            rows.add(saved)


def test_inserts_same_shape_again_binds_fresh_values(hospital_a):
    """The statement text is built once per shape of rows and reused: the second chain's
    rows must carry the second chain's values and ids, not the first's."""
    from django.db.models.functions import Now

    from portal.db import inserts

    payer, other = make_user(name="形状甲"), make_user(name="形状乙")
    with in_schema(hospital_a):
        made = []
        for who, no in ((payer, "PSHAPE0001"), (other, "PSHAPE0002")):
            rows = InsertChain()
            order = rows.add(_order(who, no=no))
            outbox = rows.add(OutboxEvent(kind="test_shape", recipients=[who.pk],
                                          context={"who": who.name}),
                              link=IdText("/o/{}/", order))
            rows.run()
            made.append((who, order, outbox))
        assert any(shape[-1][0] is OutboxEvent for shape in inserts._statements)
        for who, order, outbox in made:
            stored = Order.objects.get(pk=order.pk)
            assert (stored.out_trade_no, stored.payer_id) == (order.out_trade_no, who.pk)
            stored_outbox = OutboxEvent.objects.get(pk=outbox.pk)
            assert stored_outbox.link == f"/o/{order.pk}/"
            assert stored_outbox.context == {"who": who.name}
        # A value that is an expression this time: compiled afresh, still right.
        rows = InsertChain()
        order = rows.add(_order(payer, no="PSHAPE0003", expires_at=Now()))
        outbox = rows.add(OutboxEvent(kind="test_shape", recipients=[payer.pk]),
                          link=IdText("/o/{}/", order))
        rows.run()
        assert OutboxEvent.objects.get(pk=outbox.pk).link == f"/o/{order.pk}/"
        assert Order.objects.get(pk=order.pk).expires_at is not None
