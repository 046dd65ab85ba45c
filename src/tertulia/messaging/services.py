"""Writes for messages: storing an inbound message once, recording a status, queueing a
service message."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from tertulia.cohorts.models import Enrollment, Participant
from tertulia.core.crypto import lookup_hash
from tertulia.messaging.guards import RecipientBlocked, blocked_hashes
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.signals import inbound_from_unknown


@dataclass(frozen=True)
class Inbound:
    channel: str
    address: str  # the sender's E.164 number as the channel gives it
    provider_id: str
    received_at: dt.datetime
    kind: str = "text"
    text: str = ""
    button_id: str = ""
    button_title: str = ""
    payload: dict | None = None
    segments: int | None = None  # SMS segments it came in


def running_enrollment(participant: Participant | None) -> Enrollment | None:
    if participant is None:
        return None
    return (
        Enrollment.objects.filter(participant=participant)
        .select_related("cohort")
        .order_by("-enrolled_at", "-id")
        .first()
    )


def message_record_inbound(inbound: Inbound) -> tuple[Message, bool]:
    """Store an inbound message once (providers retry deliveries for days). Returns the row and
    whether it is new. Nothing is decided here: routing comes after the row exists."""
    address = inbound.address if inbound.address.startswith("+") else f"+{inbound.address}"
    participant = Participant.objects.filter(phone_hash=lookup_hash(address)).first()
    if participant is None and address.startswith("+"):
        for _receiver, answer in inbound_from_unknown.send(
            sender=Message, address=address, inbound=inbound
        ):
            if isinstance(answer, Participant):
                participant = answer
                break
    enrollment = running_enrollment(participant)
    payload = dict(inbound.payload or {})
    if inbound.button_id:
        payload.update(button_id=inbound.button_id, button_title=inbound.button_title)
    if inbound.provider_id:
        found = Message.objects.filter(
            channel=inbound.channel,
            direction=Message.Direction.IN,
            provider_id=inbound.provider_id,
        ).first()
        if found:
            return found, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                direction=Message.Direction.IN,
                participant=participant,
                enrollment=enrollment,
                channel=inbound.channel,
                provider_id=inbound.provider_id,
                kind=inbound.kind,
                body=inbound.text or inbound.button_title,
                payload=payload,
                status=Message.Status.RECEIVED,
                created_at=inbound.received_at,
                segments=inbound.segments,
            )
    except IntegrityError:
        # Two deliveries of the same message raced; the other one stored it.
        return (
            Message.objects.get(
                channel=inbound.channel,
                direction=Message.Direction.IN,
                provider_id=inbound.provider_id,
            ),
            False,
        )
    return message, True


def message_status_update(
    *, channel: str, provider_id: str, status: str, at: dt.datetime, error_code: str = ""
) -> int:
    """Record a delivery status. A read receipt also marks his earlier messages read, as
    WhatsApp does. Statuses arrive out of order: a later state is never overwritten by an
    earlier one. Returns how many messages changed."""
    message = (
        Message.objects.filter(
            channel=channel, direction=Message.Direction.OUT, provider_id=provider_id
        )
        .only("id", "participant_id", "enrollment_id", "created_at")
        .first()
    )
    if message is None:
        return 0
    mine = Message.objects.filter(pk=message.pk)
    if status == "failed":
        return mine.update(status=Message.Status.FAILED, failed_at=at, error_code=error_code)
    if status == "delivered":
        mine.filter(status=Message.Status.SENT).update(status=Message.Status.DELIVERED)
        return mine.filter(delivered_at__isnull=True).update(delivered_at=at)
    if status == "read":
        his = Q(participant_id=message.participant_id)
        if message.participant_id is None:
            his = Q(participant__isnull=True)  # what message_statuses_update does too
        with transaction.atomic():
            newly_read = Message.objects.filter(
                his,
                direction=Message.Direction.OUT,
                read_at__isnull=True,
                created_at__lte=message.created_at,
            ).filter(Q(status=Message.Status.SENT) | Q(status=Message.Status.DELIVERED))
            changed = newly_read.update(status=Message.Status.READ, read_at=at)
            if changed and message.enrollment_id:
                engagement_record(message.enrollment_id, at, messages_read=changed)
        return changed
    return 0


def message_pricing_record(
    *, channel: str, provider_id: str, category: str, billable: bool | None = None
) -> int:
    """Record how the provider bills an outbound message (its pricing category and whether it
    is billable); one conditional update, so repeated statuses cost nothing extra."""
    values: dict[str, object] = {"pricing_category": category[:40]}
    if billable is not None:
        values["billable"] = billable
    return Message.objects.filter(
        channel=channel, direction=Message.Direction.OUT, provider_id=provider_id
    ).update(**values)


def message_receive(inbound: Inbound, *, now: dt.datetime) -> tuple[Message, bool]:
    """Store an inbound message once, then have it routed after the transaction commits.
    Every channel's webhook ends here. A message stored by an earlier delivery that crashed
    before routing is routed now; one already routed is left alone (routing is idempotent)."""
    from tertulia.messaging.tasks import route_inbound_task

    message, created = message_record_inbound(inbound)
    if message.status == Message.Status.RECEIVED:
        transaction.on_commit(
            lambda: route_inbound_task.enqueue(message.pk, now.isoformat())  # type: ignore[misc]
        )
    return message, created


@dataclass(frozen=True)
class StatusUpdate:
    provider_id: str
    status: str  # sent | delivered | read | failed
    at: dt.datetime
    error_code: str = ""


def message_statuses_update(*, channel: str, updates: Sequence[StatusUpdate]) -> int:
    """message_status_update for a whole webhook's statuses with a handful of queries instead
    of several per status: a relay to 49 men brings back about 150 statuses, and applying them
    one by one kept the workers from the next posts (bench/relay.py). Same rules: statuses
    never move a message backwards; a read marks his earlier messages read, each at the time of
    the first read that reached it (a batch may hold a backlog of days: his reads are applied
    in the order of the messages he read). Returns how many messages changed."""
    wanted = {u.provider_id for u in updates if u.status in ("delivered", "read", "failed")}
    if not wanted:
        return 0
    found = {
        m.provider_id: m
        for m in Message.objects.filter(
            channel=channel, direction=Message.Direction.OUT, provider_id__in=wanted
        ).only("id", "provider_id", "participant_id", "enrollment_id", "created_at")
    }
    changed = 0
    delivered: dict[dt.datetime, list[int]] = defaultdict(list)
    reads: dict[int | None, dict[int, tuple[Message, dt.datetime]]] = defaultdict(dict)
    failed: list[tuple[Message, StatusUpdate]] = []
    for update in updates:
        message = found.get(update.provider_id)
        if message is None:
            continue
        if update.status == "delivered":
            delivered[update.at].append(message.pk)
        elif update.status == "read":
            # A message read twice: its first read counts, as one by one.
            reads[message.participant_id].setdefault(message.pk, (message, update.at))
        elif update.status == "failed":
            failed.append((message, update))
    with transaction.atomic():
        # A failure first: a failed message is then neither delivered nor read.
        for message, update in failed:
            changed += Message.objects.filter(pk=message.pk).update(
                status=Message.Status.FAILED, failed_at=update.at, error_code=update.error_code
            )
        if delivered:
            all_ids = [i for ids in delivered.values() for i in ids]
            Message.objects.filter(pk__in=all_ids, status=Message.Status.SENT).update(
                status=Message.Status.DELIVERED
            )
            for at in sorted(delivered):  # the earliest delivery time wins, as one by one
                changed += Message.objects.filter(
                    pk__in=delivered[at], delivered_at__isnull=True
                ).update(delivered_at=at)
        # Round k applies each man's k-th read, in the order of the messages he read: usually
        # one round (one read per man), and as one by one when a batch holds several.
        ordered = [
            sorted(his.values(), key=lambda read: (read[0].created_at, read[0].pk))
            for his in reads.values()
        ]
        for k in range(max((len(his) for his in ordered), default=0)):
            changed += _reads_record([his[k] for his in ordered if len(his) > k])
    return changed


def _reads_record(reads: list[tuple[Message, dt.datetime]]) -> int:
    """Mark read, for each man, his messages up to the one he read; count them as engagement."""
    readable = Q(status=Message.Status.SENT) | Q(status=Message.Status.DELIVERED)
    per_participant: dict[int | None, int] = {}
    one_by_one = reads
    if connection.vendor == "postgresql":
        known = [(m, at) for m, at in reads if m.participant_id is not None]
        one_by_one = [(m, at) for m, at in reads if m.participant_id is None]
        table = Message._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" AS m SET status = %s, read_at = v.at '  # noqa: S608
                "FROM (SELECT unnest(%s::bigint[]) AS participant_id, "
                "unnest(%s::timestamptz[]) AS cutoff, unnest(%s::timestamptz[]) AS at) AS v "
                "WHERE m.participant_id = v.participant_id AND m.direction = %s "
                "AND m.read_at IS NULL AND m.created_at <= v.cutoff AND m.status IN (%s, %s) "
                "RETURNING m.participant_id",
                [
                    Message.Status.READ,
                    [m.participant_id for m, _ in known],
                    [m.created_at for m, _ in known],
                    [at for _, at in known],
                    Message.Direction.OUT,
                    Message.Status.SENT,
                    Message.Status.DELIVERED,
                ],
            )
            for (participant_id,) in cursor.fetchall():
                per_participant[participant_id] = per_participant.get(participant_id, 0) + 1
    for message, at in one_by_one:
        his = Q(participant__isnull=True)  # as one by one: a message of no known participant
        if message.participant_id is not None:
            his = Q(participant_id=message.participant_id)
        per_participant[message.participant_id] = (
            Message.objects.filter(
                his,
                direction=Message.Direction.OUT,
                read_at__isnull=True,
                created_at__lte=message.created_at,
            )
            .filter(readable)
            .update(status=Message.Status.READ, read_at=at)
        )
    # Engagement goes to the enrollment of the message he read, grouped into few UPDATEs.
    groups: dict[tuple[int, dt.datetime], list[int]] = defaultdict(list)
    for message, at in reads:
        count = per_participant.get(message.participant_id, 0)
        if count and message.enrollment_id:
            groups[(count, at)].append(message.enrollment_id)
    for (count, at), enrollment_ids in groups.items():
        Enrollment.objects.filter(pk__in=enrollment_ids).update(
            messages_read=F("messages_read") + count, last_engaged_at=at
        )
    revived = [e for ids in groups.values() for e in ids]
    if revived:
        Enrollment.objects.filter(pk__in=revived, state=Enrollment.State.DROPPED).update(
            state=Enrollment.State.ACTIVE
        )
    return sum(per_participant.values())


def engagement_record(
    enrollment_id: int,
    at: dt.datetime,
    *,
    messages_read: int = 0,
    replies: int = 0,
    checkins: int = 0,
) -> None:
    """Count an engagement; a man who had gone silent and comes back is active again."""
    Enrollment.objects.filter(pk=enrollment_id).update(
        messages_read=F("messages_read") + messages_read,
        replies=F("replies") + replies,
        checkins_answered=F("checkins_answered") + checkins,
        last_engaged_at=at,
    )
    Enrollment.objects.filter(pk=enrollment_id, state=Enrollment.State.DROPPED).update(
        state=Enrollment.State.ACTIVE
    )


def service_message_queue(
    *,
    participant: Participant,
    enrollment: Enrollment | None,
    channel: str,
    text: str,
    now: dt.datetime,
    template: str = "",
    buttons: list[dict[str, str]] | None = None,
    template_values: dict[str, str] | None = None,
) -> Outbox:
    """Queue a message that is not curriculum (a keyword's answer) on the same Outbox path.
    `template` names the template a channel sends instead when his 24-hour window is closed;
    `buttons` ([{"id", "title"}], at most three) makes it a reply-button message;
    `template_values` fills that template's parameters the program cannot know. Raises
    RecipientBlocked for a number that must never be messaged (a partner contact's)."""
    if blocked_hashes([participant.phone_hash]):
        raise RecipientBlocked("this number is a partner contact: nothing is sent to it")
    if buttons is not None and not 1 <= len(buttons) <= 3:
        raise ValueError(f"a reply-button message has 1 to 3 buttons, not {len(buttons)}")
    return Outbox.objects.create(
        participant=participant,
        enrollment=enrollment,
        body=text,
        template=template,
        buttons=buttons,
        content={"template_values": template_values} if template_values else None,
        channel=channel,
        status=Outbox.Status.QUEUED,
        due_at=now,
        created_at=now,
    )
