from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from . import services


# ignore_result: sent from every request that notifies; nobody reads its result, and with the
# Redis result backend each send would otherwise subscribe the web process to a result channel.
@shared_task(name="notifications.relay_event", acks_late=True, ignore_result=True)
def relay_event(event_id: int) -> int:
    """One event's relay. Not queued by current code (see relay_due); kept for tasks already
    queued by an older deployment."""
    return services.event_relay(event_id=event_id)


# Queued on commit, at most once a second (see services._enqueue_relay): relays every event
# waiting by the time it runs, which includes every event committed before the task was due.
@shared_task(name="notifications.relay_due", acks_late=True, ignore_result=True)
def relay_due() -> int:
    relayed = total = 0
    for _ in range(20):  # 500 a round; whatever is left after that, the sweeper takes
        relayed = services.events_relay_pending(older_than=timedelta(0))
        total += relayed
        if relayed < 500:
            break
    return total


@shared_task(name="notifications.deliver_chunk", acks_late=True, bind=True, max_retries=8)
def deliver_chunk(self, event_id: int, user_ids: list[int]) -> int:
    try:
        return services.chunk_deliver(event_id=event_id, user_ids=user_ids)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            # Out of retries: what is still unsent is dead-lettered, visible in the delivery log.
            from .models import Delivery

            Delivery.objects.filter(event_id=event_id, user_id__in=user_ids,
                                    status=Delivery.Status.FAILED).update(
                status=Delivery.Status.DEAD)
            raise
        # exponential backoff with jitter; the dedupe keys make every retry safe
        import random

        raise self.retry(exc=exc, countdown=min(300, 2 ** self.request.retries) +
                         random.random()) from exc


@shared_task(name="notifications.relay_pending")
def relay_pending() -> int:
    """Every minute: events whose relay never happened (Redis or every worker was down)."""
    return services.events_relay_pending()
