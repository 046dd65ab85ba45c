"""From a stored webhook body to its processing, without a queue in between.

The webhook view only stores the raw body (one INSERT, committed before the 200) and answers;
workers find stored, unprocessed events themselves and claim them in batches. An enqueue per
request (a Redis round trip and a pickled job, a third of each request) bought nothing the
table does not already give: the row is the durable record, and the claim is the hand-off.

- **Claim.** `webhook_events_claim` marks up to `limit` unprocessed events with the claim's
  time, messages before statuses, oldest first. On PostgreSQL the rows are picked with
  ``SELECT … FOR UPDATE SKIP LOCKED``, so workers claiming at the same moment get disjoint
  batches without waiting for each other; on SQLite the write lock serializes claims.
- **Lease.** A claim older than `LEASE` is taken again: a worker killed between claim and done
  loses nothing, its events come back a minute later. The lease is renewed while a long batch
  runs. An event whose single processing outlived the lease could be taken twice; processing
  is idempotent (each message and status is deduplicated in the database), so that costs work,
  never a duplicate.
- **Waking.** A worker with nothing to do looks again every `poll_seconds` (20 ms by default:
  a look through the partial index of unprocessed rows, about fifty a second per worker,
  negligible for the database), or at once when a view in the same process stored an event
  (`tertulia serve`). PostgreSQL's NOTIFY was not used: a notifying transaction holds a
  cluster-wide lock until after its commit, WAL flush included, which would serialize the
  very INSERTs the view must keep concurrent (decision 0090).
- **A man first.** Before the statuses of its batch a worker checks whether a body with a man's
  message arrived meanwhile, and if so hands them back and takes that first: a relay's flood of
  delivery statuses never delays the next post by more than one batch of statuses.
- **Statuses together.** Bodies with only delivery statuses are claimed up to `STATUS_BATCH`
  at a time when no man's message waits, and applied in one pass (`STATUS_PROCESSORS`): 0.11 ms
  of CPU per body against 2.75 ms one by one (a relay brings back three for every copy). If
  the pass fails, each body is tried alone, so one bad body holds back only itself.
- **Every channel.** Twilio's webhooks are stored and claimed the same way; a claimed event is
  processed by its channel's kind (`PROCESSORS`: WhatsApp's envelope, Twilio's form).
- **Only through a claim.** Whatever processes stored events — the worker loop, a drain in the
  demo or the tests, reconciliation of an unconfirmed send (`webhook_events_process_pending`)
  — claims them first, so an event is processed by one worker at a time.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import close_old_connections, connection, transaction
from django.db.models import Q

from tertulia.core import clock, crypto
from tertulia.messaging.models import Message, WebhookEvent

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
# A worker's claims leave delivery statuses alone while a man's message waits to be routed, for
# up to STATUS_PATIENCE: a relay brings back three statuses for each of its copies, and applying
# them took the CPU the next posts of a burst needed (bench/relay.py). A message received more
# than ROUTING_RECENT ago and still not routed (its routing keeps failing) holds nothing back.
STATUS_PATIENCE = dt.timedelta(seconds=3)
ROUTING_RECENT = dt.timedelta(minutes=1)
# Small, so that workers share a burst of posts instead of one taking it all (claiming costs
# about a millisecond; processing an event, ten or more).
CLAIM_BATCH = 5
# Bodies with only delivery statuses are claimed, and applied, up to this many together
# (STATUS_PROCESSORS): one pass costs about what two bodies cost one by one.
STATUS_BATCH = 50
POLL_SECONDS = float(os.environ.get("TERTULIA_WEBHOOK_POLL_MS", "20")) / 1000.0

# Set by a view that stored an event, so a worker thread in the same process starts at once.
_stored = threading.Event()

_INSERT = (
    "INSERT INTO messaging_webhookevent"
    " (channel, body, received_at, signature_ok, has_messages, problems)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


@contextmanager
def _prepared_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A server-side-binding psycopg cursor on Django's connection (PostgreSQL only), for the
    statements run on every POST or poll: prepared once per connection with `prepare=True`.
    Django's error wrapper still marks a broken connection for replacement."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def webhook_event_store(
    *, channel: str, body: str, received_at: dt.datetime, has_messages: bool
) -> None:
    """Store one signed webhook body, encrypted, in a single INSERT committed before this
    returns (autocommit): the caller may answer 200 as soon as it does."""
    values = [
        channel,
        crypto.encrypt(body),
        connection.ops.adapt_datetimefield_value(received_at),
        True,
        has_messages,
        "[]",
    ]
    if connection.vendor == "postgresql":
        # Its values sent apart: psycopg's client-side cursor would quote the whole encrypted
        # body into the SQL text on every POST.
        with _prepared_cursor() as cursor:
            cursor.execute(_INSERT, values, prepare=True)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, values)
    _stored.set()


# How a claimed event is processed, by the kind of its channel ("whatsapp:peru" -> "whatsapp"):
# "module:function", imported when first needed (and looked up on each call, so a test may
# replace the function).
PROCESSORS = {
    "whatsapp": "tertulia.messaging.channels.whatsapp.processing:webhook_event_process",
    "twilio": "tertulia.messaging.channels.twilio_sms.processing:twilio_event_process",
}


# How several claimed bodies with only statuses are applied together, for the kinds that can:
# called with their ids (one channel), it returns those it left to PROCESSORS.
STATUS_PROCESSORS = {
    "whatsapp": "tertulia.messaging.channels.whatsapp.processing:webhook_events_process_statuses",
}


def _function(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _processor(channel: str) -> Callable[..., Any]:
    return _function(PROCESSORS.get(channel.partition(":")[0], PROCESSORS["whatsapp"]))


def _status_processor(channel: str) -> Callable[..., Any] | None:
    path = STATUS_PROCESSORS.get(channel.partition(":")[0])
    return _function(path) if path is not None else None


def _claimable(now: dt.datetime, channel: str | None = None) -> Q:
    claimable = Q(processed_at__isnull=True) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE)
    )
    return claimable & Q(channel=channel) if channel is not None else claimable


@dataclass(frozen=True)
class Claimed:
    id: int
    has_messages: bool
    channel: str


def _routing_pending(now: dt.datetime) -> bool:
    """Whether a man's message received lately still waits to be routed."""
    return Message.objects.filter(
        status=Message.Status.RECEIVED, created_at__gt=now - ROUTING_RECENT
    ).exists()


def webhook_events_claim(
    *,
    limit: int = CLAIM_BATCH,
    now: dt.datetime | None = None,
    channel: str | None = None,
    defer_statuses: bool = False,
    status_limit: int | None = None,
) -> tuple[dt.datetime, list[Claimed]]:
    """Take up to `limit` stored, unprocessed events for this worker (of one channel, if
    given): those with a man's message first, then the oldest; when none holds a message, up
    to `status_limit` (default: `limit`). With `defer_statuses`, events with only statuses are
    left while a message is being routed, unless they have waited STATUS_PATIENCE. Returns the
    claim's time (its token) and the events."""
    status_limit = max(limit, status_limit or limit)
    now = now or clock.now()
    claimable = WebhookEvent.objects.filter(_claimable(now, channel))
    if defer_statuses and _routing_pending(now):
        claimable = claimable.filter(
            Q(has_messages=True) | Q(received_at__lt=now - STATUS_PATIENCE)
        )
    columns = ("id", "has_messages", "channel")
    with transaction.atomic():
        rows = list(
            claimable.order_by("-has_messages", "id")
            .select_for_update(skip_locked=True)
            .values_list(*columns)[:limit]
        )
        if rows and not rows[0][1] and status_limit > len(rows):
            # Only statuses wait: take more of them. Locked in a second step, so that a claim
            # that found men's messages locks only what it takes and the other workers take
            # the next ones meanwhile.
            rows += list(
                claimable.filter(has_messages=False, id__gt=rows[-1][0])
                .order_by("id")
                .select_for_update(skip_locked=True)
                .values_list(*columns)[: status_limit - len(rows)]
            )
        if rows:
            WebhookEvent.objects.filter(id__in=[r[0] for r in rows]).update(claimed_at=now)
    return now, [Claimed(id=r[0], has_messages=r[1], channel=r[2]) for r in rows]


def _release(claimed_at: dt.datetime, ids: list[int]) -> None:
    """Hand claimed, unstarted events back, so the next claim takes them in order again."""
    if ids:
        WebhookEvent.objects.filter(
            id__in=ids, claimed_at=claimed_at, processed_at__isnull=True
        ).update(claimed_at=None)


def _renew(claimed_at: dt.datetime, ids: list[int], now: dt.datetime) -> set[int]:
    """Extend the lease of events still claimed under `claimed_at`; those no longer ours
    (taken by another worker after a stall) are left out."""
    with transaction.atomic():
        mine = set(
            WebhookEvent.objects.filter(
                id__in=ids, claimed_at=claimed_at, processed_at__isnull=True
            ).values_list("id", flat=True)
        )
        WebhookEvent.objects.filter(id__in=mine).update(claimed_at=now)
    return mine


def _message_waiting(now: dt.datetime, channel: str | None = None) -> bool:
    return WebhookEvent.objects.filter(_claimable(now, channel), has_messages=True).exists()


_ANY_WAITING = (
    "SELECT 1 FROM messaging_webhookevent WHERE processed_at IS NULL"
    " AND (claimed_at IS NULL OR claimed_at < %s) LIMIT 1"
)


def webhook_events_any_waiting(now: dt.datetime | None = None, channel: str | None = None) -> bool:
    """Whether anything is left to claim. An idle worker asks fifty times a second: on
    PostgreSQL it is a statement prepared once per connection, not a query the ORM compiles
    each time (most of an idle worker's CPU)."""
    now = now or clock.now()
    if channel is None and connection.vendor == "postgresql":
        with _prepared_cursor() as cursor:
            cursor.execute(_ANY_WAITING, [now - LEASE], prepare=True)
            return cursor.fetchone() is not None
    return WebhookEvent.objects.filter(_claimable(now, channel)).exists()


def webhook_events_process_claimed(
    claimed_at: dt.datetime,
    events: list[Claimed],
    *,
    channel: str | None = None,
    share_routing: bool = True,
) -> int:
    """Process a claimed batch in order; return how many were processed. Its events with only
    statuses are applied together, per channel, where the channel can (STATUS_PROCESSORS). A
    failure leaves its event claimed, so it is tried again when the lease ends. `channel` is
    the one the batch was claimed from, if it was; with `share_routing` off every event's
    messages are routed in place, none handed to routing tasks."""
    done = 0
    token = claimed_at
    lost: set[int] = set()
    taken: set[int] = set()  # applied with others of their channel, ahead of their turn
    for index, event in enumerate(events):
        if event.id in taken:
            continue
        now = clock.now()
        rest = [e.id for e in events[index:] if e.id not in lost and e.id not in taken]
        if not event.has_messages and index > 0 and _message_waiting(now, channel):
            _release(token, rest)
            break
        if now - token > LEASE / 2:
            lost |= set(rest) - _renew(token, rest, now)
            token = now
        if event.id in lost:
            continue
        together = _status_processor(event.channel) if not event.has_messages else None
        if together is not None:
            # Every status-only event of this channel left in the batch, in their order: a
            # batch's statuses come after its messages, from however many numbers.
            ids = [
                e.id
                for e in events[index:]
                if not e.has_messages
                and e.channel == event.channel
                and e.id not in lost
                and e.id not in taken
            ]
            taken.update(ids)
            try:
                alone = together(ids)
                done += len(ids) - len(alone)
            except Exception:
                logger.exception("%d status events could not be applied together", len(ids))
                alone = ids
            for event_id in alone:
                done += _process_one(event.channel, event_id, route_inline=not share_routing)
            continue
        # The batch's first event is routed here; the others' messages go to routing
        # tasks, so that idle workers share a burst of posts instead of waiting in line.
        done += _process_one(event.channel, event.id, route_inline=done == 0 or not share_routing)
    return done


def _process_one(channel: str, event_id: int, *, route_inline: bool) -> int:
    """Process one claimed event; 1 if it was, 0 if it failed (it stays claimed, and is tried
    again when the lease ends)."""
    try:
        _processor(channel)(event_id, route_inline=route_inline)
    except Exception:
        # Never the body: it holds numbers and texts.
        logger.exception("webhook event %s could not be processed; retried later", event_id)
        return 0
    return 1


def webhook_events_drain(
    *, limit: int = CLAIM_BATCH, max_batches: int | None = None, defer_statuses: bool = False
) -> int:
    """Claim and process batches until nothing is left to claim; return how many ran. A
    long-lived worker defers statuses (webhook_events_claim); a drain that must leave nothing
    behind (the demo, the tests) does not."""
    done = 0
    batches = 0
    if not webhook_events_any_waiting():
        return 0  # one read, not a write transaction, when there is nothing (the usual case)
    while max_batches is None or batches < max_batches:
        claimed_at, events = webhook_events_claim(
            limit=limit, defer_statuses=defer_statuses, status_limit=STATUS_BATCH
        )
        if not events:
            break
        done += webhook_events_process_claimed(claimed_at, events)
        batches += 1
    return done


def webhook_events_process_pending(*, channel: str | None = None, limit: int = 1000) -> int:
    """Process stored events nobody is processing (of one channel, if given), up to `limit`,
    through the claim like any worker: an event another worker holds under a live lease is
    left to it, so no event is processed by two at once. Each event's messages are routed in
    place. Returns how many this call processed. Used where a caller needs what has arrived
    applied now: reconciling an unconfirmed send, the demos."""
    done = 0
    while done < limit:
        claimed_at, events = webhook_events_claim(
            limit=min(CLAIM_BATCH, limit - done), channel=channel
        )
        if not events:
            break
        done += webhook_events_process_claimed(
            claimed_at, events, channel=channel, share_routing=False
        )
    return done


def webhook_events_unprocessed(*, channel: str, since: dt.datetime) -> bool:
    """Whether events of `channel` received after `since` are still unprocessed (another
    worker holds them, or they failed and wait for their lease to end)."""
    return WebhookEvent.objects.filter(
        channel=channel, received_at__gt=since, processed_at__isnull=True
    ).exists()


def run_forever(
    stop: threading.Event | None = None,
    *,
    poll_seconds: float = POLL_SECONDS,
    limit: int = CLAIM_BATCH,
) -> None:
    """The worker loop: drain, then wait for the next poll or a same-process store."""
    stop = stop or threading.Event()
    for kind in PROCESSORS:
        _processor(kind)  # imported now, not while the first event waits
        _status_processor(kind)
    while not stop.is_set():
        try:
            if webhook_events_drain(limit=limit, defer_statuses=True) == 0:
                _stored.wait(poll_seconds)
                _stored.clear()
            else:
                close_old_connections()
        except Exception:
            logger.exception("webhook worker: a round failed; starting again")
            # A dropped database connection is replaced on the next query.
            connection.close()
            stop.wait(1.0)


def start(*, poll_seconds: float = POLL_SECONDS) -> threading.Thread:
    """Run the loop in a daemon thread of this process (`tertulia worker`, `tertulia serve`)."""
    thread = threading.Thread(
        target=run_forever,
        kwargs={"poll_seconds": poll_seconds},
        name="tertulia-webhooks",
        daemon=True,
    )
    thread.start()
    return thread
