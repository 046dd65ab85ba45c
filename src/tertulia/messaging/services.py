"""Writes for messages: storing an inbound message once, recording a status, queueing a
service message."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
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
        with transaction.atomic():
            newly_read = Message.objects.filter(
                participant_id=message.participant_id,
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
) -> Outbox:
    """Queue a message that is not curriculum (a keyword's answer) on the same Outbox path.
    `template` names the template a channel sends instead when his 24-hour window is closed;
    `buttons` ([{"id", "title"}], at most three) makes it a reply-button message. Raises
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
        channel=channel,
        status=Outbox.Status.QUEUED,
        due_at=now,
        created_at=now,
    )
