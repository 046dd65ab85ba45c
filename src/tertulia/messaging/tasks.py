"""Background work, through Django's Tasks API: the same code runs on the embedded database
queue and on Redis/RQ. Tasks take ids and times, never objects, and only call services."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django_tasks import task

from tertulia.core import clock
from tertulia.messaging.models import Outbox
from tertulia.messaging.router import ROUTED_SEND_LIMIT, message_route, outbox_send_routed
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import SendReport, outbox_recover_stale, outbox_send_batches

SEND_BATCHES_PER_TASK = 20
# Rows claimed at a time: small enough that several workers share a burst (a relay's 49 sends
# times 20 posts) instead of one worker taking it all, large enough to keep the channel's
# concurrent sends busy.
SEND_BATCH = 100
# Rows queued and due for longer than this, with no send in progress, are sent by the clock's
# tick: something queued them without a task of its own.
CATCH_UP_AFTER = dt.timedelta(minutes=1)
# Routing a man's message and sending what it produced (a keyword's answer, a community post
# to 49 men) go before bookkeeping: a relay to 49 men brings back ~150 delivery statuses, and
# in a FIFO queue their webhooks delayed the next posts' routing (bench/relay.py). The database
# queue orders by priority; the RQ backend refuses priorities, so there this work goes to a
# queue of its own that RQ workers take first (messaging.worker).
PERSON_WAITING = 10
INTERACTIVE_QUEUE = "interactive"


def person_waiting() -> int:
    """The priority of work a person waits for, on the configured backend."""
    from django_tasks import default_task_backend
    from django_tasks.base import DEFAULT_TASK_PRIORITY

    return PERSON_WAITING if default_task_backend.supports_priority else DEFAULT_TASK_PRIORITY


def person_waiting_queue() -> str:
    """The queue of work a person waits for: its own on a backend without priorities."""
    from django_tasks import DEFAULT_TASK_QUEUE_NAME, default_task_backend

    if default_task_backend.supports_priority:
        return DEFAULT_TASK_QUEUE_NAME
    if INTERACTIVE_QUEUE in default_task_backend.queues:
        return INTERACTIVE_QUEUE
    return DEFAULT_TASK_QUEUE_NAME


def _when(iso: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(iso) if iso else clock.now()


@task()
def schedule_due_task(now_iso: str | None = None) -> dict[str, int]:
    """Write what is due into the Outbox, then start sending it. Rows already queued and due
    are sent too: whatever queued them without a task of its own (a process that routed a
    message outside a worker, a task lost with its queue) is caught up within a tick."""
    now = _when(now_iso)
    report = outbox_enqueue_due(now=now)
    outbox_recover_stale(now=now)
    # Waiting a minute past due, and no send in progress: a running send chain is not doubled.
    waiting = Outbox.objects.filter(status=Outbox.Status.QUEUED, due_at__lte=now - CATCH_UP_AFTER)
    sending = Outbox.objects.filter(status=Outbox.Status.SENDING)
    if report.outbox_written or (waiting.exists() and not sending.exists()):
        transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))
    return {"outbox_written": report.outbox_written, "completed": report.completed}


@task(priority=person_waiting(), queue_name=person_waiting_queue())
def send_outbox_task(now_iso: str | None = None) -> int:
    """Drain due Outbox rows in batches; hand what is left to a fresh task."""
    now = _when(now_iso)
    report, drained = outbox_send_batches(now=now, limit=SEND_BATCH, batches=SEND_BATCHES_PER_TASK)
    if drained:
        return report.sent
    if Outbox.objects.filter(status=Outbox.Status.QUEUED, due_at__lte=now).exists():
        send_outbox_task.enqueue(now.isoformat())
    return report.sent


@task(priority=person_waiting(), queue_name=person_waiting_queue())
def route_inbound_task(message_id: int, now_iso: str | None = None) -> str:
    """Route one stored inbound message, then send at once what it produced."""
    now = _when(now_iso)
    return message_route_and_send(message_id=message_id, now=now)


def message_route_and_send(*, message_id: int, now: dt.datetime) -> str:
    """Route a message and send its answers in the same task (a keyword's reply, a community
    post's copies to the other members): one task hop less between a man's post and the
    others' phones (bench/relay.py). Rows left due (paced by a rate limit, more than one
    task's share) go to send_outbox_task."""
    route = message_route(message_id=message_id, now=now)

    def then(report: SendReport) -> None:
        if report.paced or report.retried:
            transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))

    if outbox_send_routed(now=now, then=then) >= ROUTED_SEND_LIMIT:
        transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))
    return route
