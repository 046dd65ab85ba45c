"""Background work, through Django's Tasks API: the same code runs on the embedded database
queue and on Redis/RQ. Tasks take ids and times, never objects, and only call services."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django_tasks import task

from tertulia.core import clock
from tertulia.messaging.models import Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import outbox_recover_stale, outbox_send_batches

SEND_BATCHES_PER_TASK = 20
# Rows claimed at a time: small enough that several workers share a burst (a relay's 49 sends
# times 20 posts) instead of one worker taking it all, large enough to keep the channel's
# concurrent sends busy.
SEND_BATCH = 100
# Routing a man's message and sending what it produced (a keyword's answer, a community post
# to 49 men) go before bookkeeping: a relay to 49 men brings back ~150 delivery statuses, and
# in a FIFO queue their webhooks delayed the next posts' routing (bench/relay.py). The database
# queue orders by priority; the RQ backend refuses priorities, so there it stays FIFO.
PERSON_WAITING = 10


def person_waiting() -> int:
    """The priority of work a person waits for, on the configured backend."""
    from django_tasks import default_task_backend
    from django_tasks.base import DEFAULT_TASK_PRIORITY

    return PERSON_WAITING if default_task_backend.supports_priority else DEFAULT_TASK_PRIORITY


def _when(iso: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(iso) if iso else clock.now()


@task()
def schedule_due_task(now_iso: str | None = None) -> dict[str, int]:
    """Write what is due into the Outbox, then start sending it."""
    now = _when(now_iso)
    report = outbox_enqueue_due(now=now)
    outbox_recover_stale(now=now)
    if report.outbox_written:
        transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))
    return {"outbox_written": report.outbox_written, "completed": report.completed}


@task(priority=person_waiting())
def send_outbox_task(now_iso: str | None = None) -> int:
    """Drain due Outbox rows in batches; hand what is left to a fresh task."""
    now = _when(now_iso)
    report, drained = outbox_send_batches(now=now, limit=SEND_BATCH, batches=SEND_BATCHES_PER_TASK)
    if drained:
        return report.sent
    if Outbox.objects.filter(status=Outbox.Status.QUEUED, due_at__lte=now).exists():
        send_outbox_task.enqueue(now.isoformat())
    return report.sent


@task(priority=person_waiting())
def route_inbound_task(message_id: int, now_iso: str | None = None) -> str:
    """Route one stored inbound message, then send any answer it produced."""
    now = _when(now_iso)
    route = message_route(message_id=message_id, now=now)
    if Outbox.objects.filter(
        status=Outbox.Status.QUEUED, due_at__lte=now, step__isnull=True
    ).exists():
        transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))
    return route
