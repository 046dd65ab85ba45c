"""Turning a stored webhook body into Message rows and statuses.

Meta re-delivers webhooks for days and may put the same message in two POSTs, so each inbound
message and status is applied exactly once through the database (the Message table's unique
provider id; statuses never move a message backwards). Nothing here logs bodies or numbers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Q

from tertulia.cohorts.models import Participant
from tertulia.core import clock
from tertulia.messaging.channel import ChannelError
from tertulia.messaging.models import ChannelConfig, Message, WebhookEvent
from tertulia.messaging.ratelimit import inbound_count
from tertulia.messaging.services import (
    Inbound,
    StatusUpdate,
    message_record_inbound,
    message_statuses_update,
)

from .errors import Action, action_for, rule_for
from .reengagement import SUPERSEDED, message_reengage, outbox_release_held
from .webhook import MEDIA_TYPES, InboundEvent, StatusEvent, parse_envelope

logger = logging.getLogger(__name__)

STATUSES = ("sent", "delivered", "read", "failed")


def inbound_from_event(event: InboundEvent, channel: str, now: dt.datetime) -> Inbound:
    """Our Inbound for one parsed WhatsApp message."""
    button_id = event.button_payload or event.list_id or ""
    button_title = event.button_title or event.list_title or ""
    if button_id:
        kind = "button"
    elif event.type in MEDIA_TYPES:
        kind = "voice" if event.type == "audio" and event.voice else event.type
    else:
        kind = event.type[:20]
    payload: dict[str, object] = {"wa_type": event.type}
    if event.user_id:
        payload["user_id"] = event.user_id
    if event.media_id:
        payload.update(media_id=event.media_id, mime_type=event.mime_type or "")
    if event.context_message_id:
        payload["context_id"] = event.context_message_id
    if event.reaction_message_id:
        payload.update(reaction_to=event.reaction_message_id, emoji=event.reaction_emoji or "")
    if event.errors:
        payload["errors"] = [e.code for e in event.errors]
    if event.referral:
        # Where a click-to-WhatsApp ad conversation started: recruitment attributes it.
        fields = ("source_url", "source_id", "source_type", "headline", "body", "media_type")
        referral = {f: getattr(event.referral, f) for f in (*fields, "ctwa_clid")}
        payload["referral"] = {k: v for k, v in referral.items() if v}
        if event.referral.ctwa_clid:
            payload["ctwa_clid"] = event.referral.ctwa_clid
    address = f"+{event.wa_id}" if event.wa_id else (event.user_id or "")
    return Inbound(
        channel=channel,
        address=address,
        provider_id=event.message_id,
        received_at=event.timestamp or now,
        kind=kind,
        text=event.text or event.caption or "",
        button_id=button_id,
        button_title=button_title,
        payload=payload,
    )


def _claim_by_reference(channel: str, status: StatusEvent, at: dt.datetime) -> None:
    """A status for a message whose send we could not confirm (a timeout after the request
    left, a crash before recording the answer): our reference names the Message, which learns
    its provider id here, so reconciliation knows Meta has it."""
    reference = status.biz_opaque_callback_data or ""
    head, _, part = reference.partition(".")
    if not head.isdigit() or part not in ("", "1"):
        return
    # A message sent again after a 131047 waits for its new id too, but never takes back the
    # id of the send Meta refused.
    Message.objects.filter(pk=int(head), channel=channel, direction=Message.Direction.OUT).filter(
        Q(provider_id="") | Q(provider_id__startswith=SUPERSEDED)
    ).exclude(provider_id=f"{SUPERSEDED}{status.message_id}").update(
        provider_id=status.message_id, status=Message.Status.SENT, sent_at=at
    )


def _apply_statuses(channel: str, statuses: list[StatusEvent], now: dt.datetime) -> None:
    """Apply statuses together (message_statuses_update), one webhook's or several stored
    bodies' of one channel: a few queries for a batch of 50 rather than several per status.
    Claims by reference only for the statuses whose message does not know its provider id
    yet."""
    if not statuses:
        return
    known = set(
        Message.objects.filter(
            channel=channel,
            direction=Message.Direction.OUT,
            provider_id__in={s.message_id for s in statuses},
        ).values_list("provider_id", flat=True)
    )
    for status in statuses:
        if status.message_id not in known:
            _claim_by_reference(channel, status, status.timestamp or now)
    message_statuses_update(
        channel=channel,
        updates=[
            StatusUpdate(
                provider_id=s.message_id,
                status=s.status,
                at=s.timestamp or now,
                error_code=str(s.error_code) if s.error_code is not None else "",
            )
            for s in statuses
            if s.status in STATUSES
        ],
    )
    _pricing_record(channel, statuses)
    refused: list[StatusEvent] = []
    for status in statuses:
        if status.status != "failed":
            continue
        if action_for(status.error_code) is Action.RETRY:
            refused.append(status)
        elif action_for(status.error_code) is Action.RESEND_AS_TEMPLATE:
            at = status.timestamp or now
            message_reengage(channel=channel, provider_id=status.message_id, at=at, now=now)
        elif action_for(status.error_code) is Action.PAUSE_CHANNEL:
            from .channel import channel_name, channel_pause

            config = ChannelConfig.objects.filter(name=channel_name(channel)).first()
            if config is not None:
                channel_pause(config, f"status webhook error {status.error_code}")
    _retry_refused(channel, refused, now)


def _retry_refused(channel: str, refused: list[StatusEvent], now: dt.datetime) -> None:
    """`failed` statuses whose code the error table retries (130429, 131056, 131000, 131016):
    Meta accepted the message and then did not deliver it. Each goes again as a new request
    on the sender's requeue path (outbox_requeue_refused: backoff, MAX_ATTEMPTS, once per
    failed status), and Meta's rate-limit signals slow the buckets down as the same answers
    given at once do (slow_down_for): 130429 the number's, 131056 that man's. A repeated
    delivery of a status already acted on changes nothing and slows nothing."""
    if not refused:
        return
    from tertulia.messaging.sender import outbox_requeue_refused

    from .channel import PAIR_LIMIT, THROUGHPUT, config_for, slow_down_for

    codes: list[str] = []
    people: list[int | None] = []
    for status in refused:
        code = status.error_code
        rule = rule_for(code)
        title = rule.title if rule is not None else "error"
        error = ChannelError(f"{code} by status webhook: {title}", code=str(code))
        outcome = outbox_requeue_refused(
            channel=channel, provider_id=status.message_id, error=error, now=now
        )
        if outcome.found:
            codes.append(str(code))
            people.append(outcome.participant_id)
    if THROUGHPUT not in codes and PAIR_LIMIT not in codes:
        return
    wanted = {p for p, c in zip(people, codes, strict=True) if c == PAIR_LIMIT and p is not None}
    phones = dict(Participant.objects.filter(id__in=wanted).values_list("id", "phone"))
    try:
        config = config_for(channel)
    except ChannelError:
        return
    slow_down_for(config, codes, [phones.get(p, "") if p is not None else "" for p in people])


def _pricing_record(channel: str, statuses: list[StatusEvent]) -> None:
    """Keep how Meta bills each message (its pricing category and whether it is billable):
    one UPDATE per distinct (category, billable) in the batch, not one per status."""
    groups: dict[tuple[str, bool | None], set[str]] = defaultdict(set)
    for status in statuses:
        if status.pricing_category:
            groups[(status.pricing_category, status.billable)].add(status.message_id)
    for (category, billable), provider_ids in groups.items():
        values: dict[str, object] = {"pricing_category": category[:40]}
        if billable is not None:
            values["billable"] = billable
        # Each of a message's statuses (sent, delivered, read) repeats its pricing: only the
        # first changes the row, the others must not write it again.
        unchanged = Q(**values)
        Message.objects.filter(
            channel=channel, direction=Message.Direction.OUT, provider_id__in=provider_ids
        ).exclude(unchanged).update(**values)


def webhook_event_process(event_id: int, *, route_inline: bool = True) -> dict[str, int]:
    """Apply one stored webhook body: record each inbound message once and route it, apply
    each status. Idempotent: a processed event is skipped, and every write dedupes.

    The event's messages are routed here, and their answers sent, rather than in one more
    task each (bench/relay.py: every hop between a man's post and the others' phones costs a
    queue round trip); when the body holds several, all but the first go to routing tasks
    first, so idle workers share them. The event is marked processed only after its messages
    are routed or handed on: a crash before that leaves it pending and the next pass routes
    them (routing is idempotent). A caller that processes many events in one task passes
    `route_inline=False` for all but one, so that their messages are shared out to routing
    tasks rather than routed one after another."""
    event = WebhookEvent.objects.filter(pk=event_id).first()
    if event is None or event.processed_at is not None:
        return {"inbound": 0, "statuses": 0}
    now = clock.now()
    parsed = parse_envelope(event.body.encode("utf-8"))
    writers: set[int] = set()
    received = 0
    to_route: list[int] = []
    for inbound in parsed.inbound:
        message, created = message_record_inbound(inbound_from_event(inbound, event.channel, now))
        received += created
        if message.participant_id:
            writers.add(message.participant_id)
        if message.status == Message.Status.RECEIVED and message.pk not in to_route:
            to_route.append(message.pk)
    _apply_statuses(event.channel, parsed.statuses, now)
    # He wrote, so his window is open: what waited for it goes now.
    outbox_release_held(participant_ids=writers, channel=event.channel, now=now)
    _route_received(to_route, now, inline=route_inline)
    problems = list(parsed.problems)
    for inbound in parsed.inbound:
        problems += [f"message type {inbound.type}: error {e.code}" for e in inbound.errors]
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=now, problems=problems[:50])
    # Meta counts what a number receives against its throughput: so do the senders.
    inbound_count(event.channel, received)
    if parsed.problems:
        logger.warning(
            "webhook event %s on %s: %d problem(s)", event.pk, event.channel, len(parsed.problems)
        )
    return {"inbound": len(parsed.inbound), "statuses": len(parsed.statuses)}


def webhook_events_process_statuses(event_ids: list[int]) -> list[int]:
    """Apply several stored bodies of one channel that hold only delivery statuses together:
    one read of the bodies, one pass of _apply_statuses and one UPDATE marking them processed,
    where one by one each body cost half a dozen queries (a relay brings back three statuses
    for every copy it sends). Returns the events left for webhook_event_process: those whose
    body holds a man's message after all. Idempotent like it: if this fails part-way, the
    events stay unprocessed and applying their statuses again changes nothing twice."""
    events = list(
        WebhookEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True)
        .order_by("id")
        .only("id", "channel", "body")
    )
    channels = {event.channel for event in events}
    if len(channels) > 1:
        raise ValueError(f"statuses of several channels in one batch: {sorted(channels)}")
    now = clock.now()
    statuses: list[StatusEvent] = []
    problems: dict[int, list[str]] = {}
    together: list[int] = []
    alone: list[int] = []
    for event in events:
        parsed = parse_envelope(event.body.encode("utf-8"))
        if parsed.inbound:
            alone.append(event.pk)
            continue
        together.append(event.pk)
        statuses += parsed.statuses
        if parsed.problems:
            problems[event.pk] = parsed.problems[:50]
    if together:
        channel = events[0].channel
        _apply_statuses(channel, statuses, now)
        WebhookEvent.objects.filter(pk__in=together).update(processed_at=now)
        for event_id, found in problems.items():
            WebhookEvent.objects.filter(pk=event_id).update(problems=found)
        if problems:
            logger.warning("webhook events on %s: problems in %d", channel, len(problems))
    return alone


def _route_received(message_ids: list[int], now: dt.datetime, *, inline: bool = True) -> None:
    """Route the first message here and send what it produced; hand the others to routing
    tasks (enqueued first, so another worker can start on them meanwhile). Inside a caller's
    transaction (reconciliation during a send) every message goes to a routing task after
    commit, so that no transaction stays open over HTTP calls. A routing error does not fail
    the whole event (its statuses are applied): the message goes to a routing task of its
    own, where the error shows in the task's result."""
    from tertulia.messaging.tasks import message_route_and_send, route_inbound_task

    inline = inline and bool(message_ids) and not transaction.get_connection().in_atomic_block
    handed_on = message_ids[1:] if inline else message_ids
    for message_id in handed_on:
        transaction.on_commit(
            lambda m=message_id: route_inbound_task.enqueue(m, now.isoformat())  # type: ignore[misc]
        )
    if not inline:
        return
    try:
        message_route_and_send(message_id=message_ids[0], now=now)
    except Exception:
        logger.exception("routing message %s failed; left to a routing task", message_ids[0])
        route_inbound_task.enqueue(message_ids[0], now.isoformat())
