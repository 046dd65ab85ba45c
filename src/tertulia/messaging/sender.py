"""The sender: drains the Outbox through each row's Channel.

Rows are claimed with a conditional update under a fresh token, so two senders never take the
same row. The Message row is written before the channel is called; a crash after that leaves
the row 'sending', and `outbox_recover_stale` asks the channel whether it went out instead of
sending it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.channel import ChannelError, Outbound, SendResult, get_channel
from tertulia.messaging.guards import blocked_hashes
from tertulia.messaging.models import Message, Outbox
from tertulia.programs.models import Step
from tertulia.programs.services import media_store_path

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    unknown: int = 0  # the provider may have them: left for outbox_recover_stale
    held: int = 0  # the channel cannot send them yet (a closed window): queued for later
    paced: int = 0  # held back by a rate limit: queued again, not counted as an attempt


def outbound_for(row: Outbox, message: Message) -> Outbound:
    """What the channel is asked to send for one Outbox row."""
    participant = row.participant
    step = row.step
    if step is None and row.buttons:
        return Outbound(
            message_id=message.pk,
            to=participant.phone,
            kind="buttons",
            text=row.body,
            buttons=list(row.buttons),
            language=participant.language,
            template=row.template,
        )
    reply_to = str((row.content or {}).get("reply_to", ""))
    if step is None and row.content and row.content.get("media_id"):
        return Outbound(
            message_id=message.pk,
            to=participant.phone,
            kind=str(row.content.get("kind", "image")),
            caption=row.body,
            media_id=str(row.content["media_id"]),
            media_mime=str(row.content.get("mime", "")),
            language=participant.language,
            template=row.template,
            reply_to=reply_to,
        )
    if step is None:
        values = (row.content or {}).get("template_values") or {}
        return Outbound(
            message_id=message.pk,
            to=participant.phone,
            kind="text",
            text=row.body,
            language=participant.language,
            template=row.template,
            reply_to=reply_to,
            template_values={str(k): str(v) for k, v in values.items()},
        )
    if step.kind == Step.Kind.CHECKIN:
        # Button ids carry the step, so an answer finds its question even days later.
        buttons = [{"id": f"ci:{step.pk}:{b['key']}", "title": b["title"]} for b in step.buttons]
        return Outbound(
            message_id=message.pk,
            to=participant.phone,
            kind="buttons",
            text=step.text,
            buttons=buttons,
            language=participant.language,
        )
    if step.kind in (Step.Kind.AUDIO, Step.Kind.VIDEO, Step.Kind.IMAGE):
        return Outbound(
            message_id=message.pk,
            to=participant.phone,
            kind=step.kind,
            caption=step.caption,
            media_file=media_store_path(
                step.media_sha256, "." + step.media_path.rsplit(".", 1)[-1]
            ),
            media_mime=step.media_mime,
            language=participant.language,
        )
    return Outbound(
        message_id=message.pk,
        to=participant.phone,
        kind="text",
        text=step.text,
        language=participant.language,
    )


def _claim(
    limit: int, now: dt.datetime, only: Sequence[int] | None = None
) -> tuple[str, list[int]]:
    """Claim up to `limit` due rows (among `only`, when given); return the claim token and the
    candidate ids (the rows actually claimed are those among them that now carry the token)."""
    token = uuid.uuid4().hex
    due = Outbox.objects.filter(status=Outbox.Status.QUEUED, due_at__lte=now)
    if only is not None:
        due = due.filter(id__in=list(only))
    ids = list(due.order_by("id").values_list("id", flat=True)[:limit])
    if ids:
        Outbox.objects.filter(id__in=ids, status=Outbox.Status.QUEUED).update(
            status=Outbox.Status.SENDING,
            claimed_by=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
        )
    return token, ids


def outbox_send_batch(
    *, now: dt.datetime, limit: int = 500, ids: Sequence[int] | None = None
) -> SendReport:
    """Claim up to `limit` due rows and send them. Returns what happened. `ids` restricts the
    claim to those rows (a routing task sending what it just queued)."""
    report = SendReport()
    token, ids = _claim(limit, now, ids)
    rows = list(
        Outbox.objects.filter(id__in=ids, claimed_by=token, status=Outbox.Status.SENDING)
        .select_related("participant", "enrollment", "step")
        .order_by("id")
    )
    report.claimed = len(rows)
    if not rows:
        return report

    # Program content stops the moment he opts out; service messages (his confirmation) go.
    stopped = [
        r
        for r in rows
        if r.step_id is not None and r.enrollment and r.enrollment.state not in Enrollment.RECEIVING
    ]
    if stopped:
        Outbox.objects.filter(id__in=[r.id for r in stopped]).update(status=Outbox.Status.CANCELLED)
        report.cancelled = len(stopped)
    rows = [r for r in rows if r not in stopped]

    # A partner contact's number is never messaged, whatever queued it (see messaging.guards).
    blocked = blocked_hashes({r.participant.phone_hash for r in rows})
    if blocked:
        refused = [r for r in rows if r.participant.phone_hash in blocked]
        Outbox.objects.filter(id__in=[r.id for r in refused]).update(
            status=Outbox.Status.CANCELLED, error="recipient blocked: a partner contact's number"
        )
        report.cancelled += len(refused)
        rows = [r for r in rows if r not in refused]

    messages = _messages_for(rows, now)
    by_channel: dict[str, list[Outbox]] = defaultdict(list)
    for row in rows:
        by_channel[row.channel].append(row)
    for kind, channel_rows in by_channel.items():
        try:
            channel = get_channel(kind)
            outbounds = [outbound_for(r, messages[r.id]) for r in channel_rows]
            results: list[SendResult | ChannelError] = channel.send_many(outbounds)
        except ChannelError as exc:
            results = [exc] * len(channel_rows)
        _record(channel_rows, messages, results, now, report)
    return report


def _messages_for(rows: list[Outbox], now: dt.datetime) -> dict[int, Message]:
    """The Message row of each Outbox row, created before anything is sent (a retried row
    keeps the Message it had)."""
    existing = {m.outbox_id: m for m in Message.objects.filter(outbox_id__in=[r.id for r in rows])}
    new = [
        Message(
            direction=Message.Direction.OUT,
            participant_id=r.participant_id,
            enrollment_id=r.enrollment_id,
            channel=r.channel,
            outbox=r,
            kind=r.step.kind if r.step else str((r.content or {}).get("kind", "text")),
            body=(r.step.text or r.step.caption) if r.step else r.body,
            payload={"day": r.day, "step": r.step_id} if r.step_id else {},
            status=Message.Status.PENDING,
            created_at=now,
        )
        for r in rows
        if r.id not in existing
    ]
    if new:
        Message.objects.bulk_create(new)
        # bulk_create returns primary keys on PostgreSQL and SQLite 3.35+, both supported.
        existing.update({m.outbox_id: m for m in new})
    return existing


def _record(
    rows: list[Outbox],
    messages: dict[int, Message],
    results: list[SendResult | ChannelError],
    now: dt.datetime,
    report: SendReport,
) -> None:
    sent_messages, sent_rows, sent_per_enrollment = [], [], defaultdict(int)
    with transaction.atomic():
        for row, result in zip(rows, results, strict=True):
            message = messages[row.id]
            if isinstance(result, SendResult):
                message.provider_id = result.provider_id
                message.status = Message.Status.SENT
                message.sent_at = now
                sent_messages.append(message)
                sent_rows.append(row.id)
                if row.enrollment_id:
                    sent_per_enrollment[row.enrollment_id] += 1
            elif getattr(result, "retry_after", None) is not None:
                # Pacing, not a failure: back in the queue for when the limit allows it.
                Outbox.objects.filter(pk=row.pk).update(
                    status=Outbox.Status.QUEUED,
                    claimed_by="",
                    attempts=F("attempts") - 1,
                    due_at=now + dt.timedelta(seconds=float(result.retry_after)),  # type: ignore[attr-defined]
                )
                report.paced += 1
            elif getattr(result, "maybe_accepted", False):
                # The provider may have accepted it: sending again could deliver it twice.
                # The row stays 'sending'; outbox_recover_stale asks the channel after the lease.
                Outbox.objects.filter(pk=row.pk).update(error=str(result)[:300])
                report.unknown += 1
            elif result.retry_at is not None and not result.permanent:
                # Held, not failed: the channel cannot take it before then (his window is
                # closed). The claim counted an attempt; waiting is not one.
                Outbox.objects.filter(pk=row.pk).update(
                    status=Outbox.Status.QUEUED,
                    claimed_by="",
                    error=str(result)[:300],
                    due_at=result.retry_at,
                    attempts=F("attempts") - 1,
                )
                report.held += 1
            elif result.permanent or row.attempts >= MAX_ATTEMPTS:
                Message.objects.filter(pk=message.pk).update(
                    status=Message.Status.FAILED, failed_at=now, error_code=result.code
                )
                Outbox.objects.filter(pk=row.pk).update(
                    status=Outbox.Status.FAILED, error=str(result)[:300]
                )
                report.failed += 1
            else:
                Outbox.objects.filter(pk=row.pk).update(
                    status=Outbox.Status.QUEUED,
                    claimed_by="",
                    error=str(result)[:300],
                    due_at=now + dt.timedelta(seconds=30 * 2**row.attempts),
                )
                report.retried += 1
        _provider_ids_set(sent_messages, now)
        # A status webhook may have been applied already (delivered, read): never move back.
        Message.objects.filter(
            id__in=[m.pk for m in sent_messages], status=Message.Status.PENDING
        ).update(status=Message.Status.SENT)
        # Only rows still ours: a status webhook may already have queued one again (WhatsApp's
        # 131047 after accepting it: it goes again as a template).
        Outbox.objects.filter(id__in=sent_rows, status=Outbox.Status.SENDING).update(
            status=Outbox.Status.SENT
        )
        by_count: dict[int, list[int]] = defaultdict(list)
        for enrollment_id, count in sent_per_enrollment.items():
            by_count[count].append(enrollment_id)
        for count, ids in by_count.items():
            Enrollment.objects.filter(id__in=ids).update(messages_sent=F("messages_sent") + count)
    report.sent += len(sent_rows)


def _provider_ids_set(messages: list[Message], sent_at: dt.datetime) -> None:
    """Give each sent Message its provider id in one statement per thousand rows (an UPDATE
    joined to a VALUES list; Django's bulk_update builds a CASE per row, several times
    slower, and this is the outbound path's hottest write)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    for start in range(0, len(messages), 1000):
        chunk = messages[start : start + 1000]
        values = ", ".join(["(%s, %s)"] * len(chunk))
        params: list[Any] = [connection.ops.adapt_datetimefield_value(sent_at)]
        for message in chunk:
            params += [message.pk, message.provider_id]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET provider_id = v.column2, sent_at = %s "  # noqa: S608
                f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
                params,
            )


def outbox_recover_stale(*, now: dt.datetime, lease: dt.timedelta = LEASE) -> int:
    """Settle rows left 'sending' by a sender that died: ask the channel whether each went out.
    Sent ones are marked sent; ones the provider never saw go back to the queue; ones it cannot
    tell about are failed visibly rather than risk a duplicate."""
    settled = 0
    stale = Outbox.objects.filter(
        status=Outbox.Status.SENDING, claimed_at__lt=now - lease
    ).select_related("message")
    for row in stale:
        message = getattr(row, "message", None)
        with transaction.atomic():
            if message is None:
                Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.QUEUED, claimed_by="")
            elif message.provider_id:
                Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.SENT)
            else:
                try:
                    provider_id = get_channel(row.channel).reconcile(message.pk)
                except ChannelError as exc:
                    Outbox.objects.filter(pk=row.pk).update(
                        status=Outbox.Status.FAILED, error=f"may have been sent: {exc}"[:300]
                    )
                    Message.objects.filter(pk=message.pk).update(
                        status=Message.Status.FAILED, failed_at=now, error_code="unknown"
                    )
                else:
                    if provider_id:
                        Message.objects.filter(pk=message.pk).update(
                            provider_id=provider_id, status=Message.Status.SENT, sent_at=now
                        )
                        Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.SENT)
                    else:
                        Outbox.objects.filter(pk=row.pk).update(
                            status=Outbox.Status.QUEUED, claimed_by=""
                        )
        settled += 1
    return settled
