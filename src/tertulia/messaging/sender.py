"""The sender: drains the Outbox through each row's Channel.

Rows are claimed with a conditional update under a fresh token, so two senders never take the
same row. The Message row is written before the channel is called; a crash after that leaves
the row 'sending', and `outbox_recover_stale` asks the channel whether it went out instead of
sending it again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet

from tertulia.cohorts.models import Enrollment, Participant
from tertulia.core import crypto
from tertulia.core.bulk import json_ready
from tertulia.messaging.channel import (
    SUPERSEDED,
    ChannelError,
    NotYetKnown,
    Outbound,
    SendResult,
    get_channel,
    provider_confirmed,
    send_start,
)
from tertulia.messaging.guards import blocked_hashes
from tertulia.messaging.models import Message, Outbox
from tertulia.programs.models import Step
from tertulia.programs.services import media_store_path

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5
# The first retry of a failed send waits between 15 and 30 s; each further one twice as long,
# up to an hour.
RETRY_BASE = 30.0
RETRY_CAP = 3600.0


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


@dataclass(slots=True)
class Recipient:
    phone: str
    phone_hash: str
    language: str


@dataclass(slots=True)
class ClaimedRow:
    """One claimed Outbox row, as the hot path needs it: plain values from one UPDATE ...
    RETURNING, not an ORM object per row. `body` is still the stored (encrypted) token; `text`
    is its plain text."""

    id: int
    participant_id: int
    enrollment_id: int | None
    day: int | None
    step_id: int | None
    body: str
    template: str
    buttons: list[dict[str, str]] | None
    content: dict[str, Any] | None
    channel: str
    attempts: int
    text: str = ""
    participant: Recipient | None = None
    step: Step | None = None


def outbound_for(row: Outbox | ClaimedRow, message: Message) -> Outbound:
    """What the channel is asked to send for one Outbox row."""
    return _outbound(row, message.pk, row.participant.phone, row.participant.language)  # type: ignore[union-attr]


def _outbound(row: Outbox | ClaimedRow, message_id: int, phone: str, language: str) -> Outbound:
    text = row.text if isinstance(row, ClaimedRow) else row.body
    step = row.step
    channel = row.channel
    if step is None and row.buttons:
        return Outbound(
            message_id=message_id,
            to=phone,
            kind="buttons",
            text=text,
            buttons=list(row.buttons),
            language=language,
            template=row.template,
            channel=channel,
        )
    reply_to = str((row.content or {}).get("reply_to", ""))
    if step is None and row.content and row.content.get("media_id"):
        return Outbound(
            message_id=message_id,
            to=phone,
            kind=str(row.content.get("kind", "image")),
            caption=text,
            media_id=str(row.content["media_id"]),
            media_mime=str(row.content.get("mime", "")),
            language=language,
            template=row.template,
            reply_to=reply_to,
            channel=channel,
        )
    if step is None:
        values = (row.content or {}).get("template_values") or {}
        return Outbound(
            message_id=message_id,
            to=phone,
            kind="text",
            text=text,
            language=language,
            template=row.template,
            reply_to=reply_to,
            template_values={str(k): str(v) for k, v in values.items()},
            channel=channel,
        )
    if step.kind == Step.Kind.CHECKIN:
        # Button ids carry the step, so an answer finds its question even days later.
        buttons = [{"id": f"ci:{step.pk}:{b['key']}", "title": b["title"]} for b in step.buttons]
        return Outbound(
            message_id=message_id,
            to=phone,
            kind="buttons",
            text=step.text,
            buttons=buttons,
            language=language,
            channel=channel,
        )
    if step.kind in (Step.Kind.AUDIO, Step.Kind.VIDEO, Step.Kind.IMAGE):
        return Outbound(
            message_id=message_id,
            to=phone,
            kind=step.kind,
            caption=step.caption,
            media_file=media_store_path(
                step.media_sha256, "." + step.media_path.rsplit(".", 1)[-1]
            ),
            media_mime=step.media_mime,
            language=language,
            channel=channel,
        )
    return Outbound(
        message_id=message_id,
        to=phone,
        kind="text",
        text=step.text,
        language=language,
        channel=channel,
    )


def _table(model: type[Any]) -> str:
    return str(connection.ops.quote_name(model._meta.db_table))


def _json_value(value: Any) -> Any:
    # PostgreSQL hands jsonb back as text under Django's loader, SQLite as text too.
    return json.loads(value) if isinstance(value, str | bytes) else value


_RETURNED = (
    "id, participant_id, enrollment_id, day, step_id, body, template, buttons, content, "
    "channel, attempts"
)


def _claim(limit: int, now: dt.datetime, only: Sequence[int] | None = None) -> list[ClaimedRow]:
    """Claim up to `limit` due rows in one statement and return them, in id order.

    On PostgreSQL the candidates are locked with SKIP LOCKED, so senders never wait for each
    other's claims; SQLite has one writer at a time anyway. Both re-check the status on the
    row they update, so a row is never claimed twice. `only` restricts the claim to those rows
    (a routing task sending what it just queued)."""
    table = _table(Outbox)
    at = connection.ops.adapt_datetimefield_value(now)
    queued, sending = Outbox.Status.QUEUED.value, Outbox.Status.SENDING.value
    returned = ", ".join(f"{table}.{column}" for column in _RETURNED.split(", "))
    among, among_params = "", []
    if only is not None:
        wanted = [int(i) for i in only]
        if not wanted:
            return []
        among = f" AND id IN ({', '.join(['%s'] * len(wanted))})"
        among_params = wanted
    if connection.vendor == "postgresql":
        # The candidates are picked once, in a materialized CTE: as an IN (subquery with
        # LIMIT) PostgreSQL may run the subquery again and claim more than `limit`.
        sql = (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} "  # noqa: S608
            f"WHERE status = %s AND due_at <= %s{among} ORDER BY id LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} SET status = %s, claimed_by = %s, claimed_at = %s, "
            f"attempts = {table}.attempts + 1 FROM picked "
            f"WHERE {table}.id = picked.id AND {table}.status = %s RETURNING {returned}"
        )
        params = [queued, at, *among_params, limit, sending, uuid.uuid4().hex, at, queued]
    else:
        sql = (
            f"UPDATE {table} SET status = %s, claimed_by = %s, claimed_at = %s, "  # noqa: S608
            f"attempts = attempts + 1 WHERE status = %s AND id IN (SELECT id FROM {table} "
            f"WHERE status = %s AND due_at <= %s{among} ORDER BY id LIMIT %s) RETURNING {returned}"
        )
        params = [sending, uuid.uuid4().hex, at, queued, queued, at, *among_params, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = [
        ClaimedRow(
            id=r[0],
            participant_id=r[1],
            enrollment_id=r[2],
            day=r[3],
            step_id=r[4],
            body=r[5] or "",
            template=r[6] or "",
            buttons=_json_value(r[7]),
            content=_json_value(r[8]),
            channel=r[9],
            attempts=r[10],
        )
        for r in fetched
    ]
    rows.sort(key=lambda r: r.id)
    return rows


def _load(rows: list[ClaimedRow]) -> None:
    """Fill in each row's recipient, step and plain text with one query per kind of thing
    (the batch's men, its few distinct steps), decrypting each value once."""
    people = {
        pk: Recipient(phone, phone_hash, language)
        for pk, phone, phone_hash, language in Participant.objects.filter(
            id__any=list({r.participant_id for r in rows})
        ).values_list("id", "phone", "phone_hash", "language")
    }
    step_ids = {r.step_id for r in rows if r.step_id is not None}
    steps = Step.objects.in_bulk(step_ids) if step_ids else {}
    for row in rows:
        row.participant = people.get(row.participant_id)
        row.step = steps.get(row.step_id) if row.step_id is not None else None
        if row.body and row.step_id is None:
            row.text = crypto.decrypt(row.body)


def outbox_send_batch(
    *, now: dt.datetime, limit: int = 500, ids: Sequence[int] | None = None
) -> SendReport:
    """Claim up to `limit` due rows and send them. Returns what happened. `ids` restricts the
    claim to those rows (a routing task sending what it just queued).

    Each channel of the batch (a WhatsApp number, a Twilio sender) is started before any is
    waited for, so that several numbers send at the same time, each at its own rate."""
    return _batch_finish(_batch_start(now, limit, ids))


def outbox_send_start(*, now: dt.datetime, ids: Sequence[int]) -> StartedBatch:
    """Claim these rows, write their Message rows and start their requests; the returned
    batch's results are recorded by `outbox_send_finish` (in this thread or another one, see
    messaging.pipeline)."""
    return _batch_start(now, len(ids), ids)


def outbox_send_finish(batch: StartedBatch) -> SendReport:
    """Wait for a started batch's requests and record every result."""
    return _batch_finish(batch)


def outbox_send_batches(
    *, now: dt.datetime, limit: int = 500, batches: int = 20
) -> tuple[SendReport, bool]:
    """Send up to `batches` batches one after another, claiming and starting each while the
    previous one's requests are still in flight (its database work overlaps their wait).
    Returns the summed report and whether a claim found nothing left that is due."""
    total = SendReport()
    current = _batch_start(now, limit)
    for number in range(batches):
        if current.report.claimed == 0:
            return total, True
        following: StartedBatch | None = None
        if number + 1 < batches:
            try:
                following = _batch_start(now, limit)
            except BaseException:
                _batch_finish(current)  # what left is recorded first
                raise
        report = _batch_finish(current)
        for key, value in vars(report).items():
            setattr(total, key, getattr(total, key) + value)
        if following is None:
            return total, False
        current = following
    return total, False


@dataclass
class StartedBatch:
    """A batch whose requests are in flight: what its results are recorded against."""

    now: dt.datetime
    report: SendReport
    messages: dict[int, int]
    started: list[tuple[list[ClaimedRow], Callable[[], list[SendResult | ChannelError]]]]


def _batch_finish(batch: StartedBatch) -> SendReport:
    """Wait for a started batch's channels and record every result."""
    done_rows: list[ClaimedRow] = []
    results: list[SendResult | ChannelError] = []
    for channel_rows, finish in batch.started:
        try:
            outcome = finish()
        except ChannelError as exc:
            outcome = [exc] * len(channel_rows)
        done_rows += channel_rows
        results += outcome
    if done_rows:
        _record(done_rows, batch.messages, results, batch.now, batch.report)
    return batch.report


def _batch_start(now: dt.datetime, limit: int, only: Sequence[int] | None = None) -> StartedBatch:
    """Claim up to `limit` due rows, write their Message rows and start every channel."""
    report = SendReport()
    rows = _claim(limit, now, only)
    report.claimed = len(rows)
    if not rows:
        return StartedBatch(now, report, {}, [])
    _load(rows)

    # Program content stops the moment he opts out; service messages (his confirmation) go.
    enrollment_ids = {r.enrollment_id for r in rows if r.step_id is not None and r.enrollment_id}
    states = (
        dict(Enrollment.objects.filter(id__any=list(enrollment_ids)).values_list("id", "state"))
        if enrollment_ids
        else {}
    )
    stopped = [
        r
        for r in rows
        if r.step_id is not None
        and r.enrollment_id
        and states.get(r.enrollment_id) not in Enrollment.RECEIVING
    ]
    if stopped:
        Outbox.objects.filter(id__in=[r.id for r in stopped]).update(status=Outbox.Status.CANCELLED)
        report.cancelled = len(stopped)
    dropped = {r.id for r in stopped}
    # A partner contact's number is never messaged, whatever queued it (see messaging.guards).
    blocked = blocked_hashes({r.participant.phone_hash for r in rows if r.participant})
    for reason, refused in (
        ("recipient blocked: a partner contact's number", [
            r for r in rows if r.participant and r.participant.phone_hash in blocked
        ]),
        ("recipient gone: no such participant", [r for r in rows if r.participant is None]),
    ):  # fmt: skip
        refused = [r for r in refused if r.id not in dropped]
        if refused:
            Outbox.objects.filter(id__in=[r.id for r in refused]).update(
                status=Outbox.Status.CANCELLED, error=reason
            )
            report.cancelled += len(refused)
            dropped |= {r.id for r in refused}
    rows = [r for r in rows if r.id not in dropped]
    if not rows:
        return StartedBatch(now, report, {}, [])

    messages = _messages_for(rows, now)
    # By kind of channel ("whatsapp"), then by configured channel ("whatsapp:peru").
    by_kind: dict[str, dict[str, list[ClaimedRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_kind[row.channel.partition(":")[0]][row.channel].append(row)
    batch = StartedBatch(now, report, messages, [])
    try:
        for kind, channels in by_kind.items():
            groups = list(channels.values())
            try:
                channel = get_channel(kind)
                outbounds = [
                    [
                        _outbound(r, messages[r.id], r.participant.phone, r.participant.language)  # type: ignore[union-attr]
                        for r in group
                    ]
                    for group in groups
                ]
                finishes = send_start(channel, outbounds)
            except ChannelError as exc:
                finishes = [_failing(exc, len(group)) for group in groups]
            batch.started += zip(groups, finishes, strict=True)
    except BaseException:
        # Whatever left is recorded, even if starting a later channel failed.
        _batch_finish(batch)
        raise
    return batch


def _constant(value: Any) -> Callable[[ClaimedRow], Any]:
    return lambda _row: value


def _failing(error: ChannelError, count: int) -> Callable[[], list[SendResult | ChannelError]]:
    return lambda: [error] * count


def _messages_for(rows: list[ClaimedRow], now: dt.datetime) -> dict[int, int]:
    """The Message row id of each Outbox row, created before anything is sent (a retried row
    keeps the Message it had): one INSERT ... RETURNING for the new ones.

    The body is stored encrypted, as the Outbox row already holds it (copied as is); a
    program step's text is encrypted once per step for the whole batch."""
    existing = dict(
        Message.objects.filter(outbox_id__any=[r.id for r in rows]).values_list("outbox_id", "id")
    )
    new = [r for r in rows if r.id not in existing]
    if not new:
        return existing
    body_field = Message._meta.get_field("body")
    step_bodies = {
        step_id: body_field.get_db_prep_save(step.text or step.caption, connection)
        for step_id, step in {r.step_id: r.step for r in new if r.step is not None}.items()
    }
    payload_field = Message._meta.get_field("payload")
    empty_payload = payload_field.get_db_prep_save({}, connection)
    created = connection.ops.adapt_datetimefield_value(now)
    given: dict[str, Callable[[ClaimedRow], Any]] = {
        "direction": lambda r: Message.Direction.OUT.value,
        "participant_id": lambda r: r.participant_id,
        "enrollment_id": lambda r: r.enrollment_id,
        "channel": lambda r: r.channel,
        "outbox_id": lambda r: r.id,
        "kind": lambda r: r.step.kind if r.step else str((r.content or {}).get("kind", "text")),
        "body": lambda r: step_bodies[r.step_id] if r.step is not None else r.body,
        "payload": lambda r: (
            payload_field.get_db_prep_save({"day": r.day, "step": r.step_id}, connection)
            if r.step_id
            else empty_payload
        ),
        "status": lambda r: Message.Status.PENDING.value,
        "created_at": lambda r: created,
    }
    # Every other column gets its field's default, computed once: a field added to Message
    # later is filled in the same way the ORM would.
    fields = [
        f
        for f in Message._meta.concrete_fields
        if not f.primary_key
        # A column with only a database default is left to the database.
        and (f.attname in given or f.has_default() or not f.has_db_default())
    ]
    constants = {
        f.attname: f.get_db_prep_save(f.get_default(), connection)
        for f in fields
        if f.attname not in given
    }
    table = _table(Message)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One JSON parameter for the whole batch: a statement with thousands of
            # placeholders costs more to prepare on the client than to run.
            varying = [f for f in fields if f.attname in given and f.attname not in _CONSTANT]
            record = ", ".join(f"{f.attname} {f.db_type(connection)}" for f in varying)
            select, params = [], []
            for f in fields:
                if f in varying:
                    select.append(f"v.{f.attname}")
                else:
                    select.append(f"CAST(%s AS {f.db_type(connection)})")
                    value = constants.get(f.attname)
                    params.append(given[f.attname](new[0]) if f.attname in given else value)
            rows_json = [{f.attname: json_ready(given[f.attname](r)) for f in varying} for r in new]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {', '.join(select)} "  # noqa: S608
                f"FROM json_to_recordset(%s::json) AS v({record}) RETURNING id, outbox_id",
                [*params, json.dumps(rows_json)],
            )
            existing.update({outbox_id: pk for pk, outbox_id in cursor.fetchall()})
            return existing
        makers = [
            given[f.attname] if f.attname in given else _constant(constants[f.attname])
            for f in fields
        ]
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        chunk = max(1, 20_000 // len(fields))
        for start in range(0, len(new), chunk):
            part = new[start : start + chunk]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([placeholders] * len(part))} RETURNING id, outbox_id",
                [make(r) for r in part for make in makers],
            )
            existing.update({outbox_id: pk for pk, outbox_id in cursor.fetchall()})
    return existing


# Columns of a new outbound Message that are the same for the whole batch.
_CONSTANT = frozenset({"direction", "status", "created_at"})


def _requeue_in(result: ChannelError, attempts: int, now: dt.datetime) -> tuple[dt.datetime, bool]:
    """When a row that did not go goes again, and whether this try counts as an attempt.

    Pacing (`retry_after`: a rate limit) and holding (`retry_at`: his window is closed) are
    waits, not failures: the claim's attempt is given back. Any other retryable error waits
    an exponential backoff with jitter (retry_delay), so rows that failed together (a burst
    of 130429) do not come back together."""
    retry_after = getattr(result, "retry_after", None)
    if retry_after is not None:
        return now + dt.timedelta(seconds=float(retry_after)), False
    if result.retry_at is not None:
        return result.retry_at, False
    return now + dt.timedelta(seconds=retry_delay(attempts)), True


def _goes_again(result: ChannelError, attempts: int) -> bool:
    """Whether a row whose send failed with `result`, after `attempts` claims, is queued
    again: a wait (pacing, a closed window) always is, a retryable failure within
    MAX_ATTEMPTS."""
    return not result.permanent and (
        attempts < MAX_ATTEMPTS
        or result.retry_at is not None
        or getattr(result, "retry_after", None) is not None
    )


def _requeue(rows: QuerySet[Outbox], result: ChannelError, attempts: int, now: dt.datetime) -> int:
    """Queue these Outbox rows (a queryset of one) again after `result`: the one requeue path
    for every failure that goes again, at once or by a later status webhook."""
    due_at, counted = _requeue_in(result, attempts, now)
    return int(
        rows.update(
            status=Outbox.Status.QUEUED,
            claimed_by="",
            error=str(result)[:300],
            due_at=due_at,
            attempts=F("attempts") if counted else F("attempts") - 1,
        )
    )


@dataclass(frozen=True)
class Refusal:
    """What became of an accepted send that the provider failed later, by status."""

    found: bool  # the status named a send of ours still current (not a repeat, not superseded)
    queued: bool  # its row goes again
    participant_id: int | None = None  # whom it was for


def outbox_requeue_refused(
    *, channel: str, provider_id: str, error: ChannelError, now: dt.datetime
) -> Refusal:
    """The provider accepted a message and then failed it by status with a retryable error
    (WhatsApp's 130429, 131056, 131000, 131016): it did not deliver *that* send, so sending
    again, as a new request, is right. The row goes back to the queue on the same path as a
    send refused at once (`_requeue`: backoff with jitter, counted as an attempt, within
    MAX_ATTEMPTS); past them it fails, as its Message already has.

    Once per failed status: the Message keeps the refused send's id as `superseded:<id>`, so a
    repeated delivery of the same status finds no send of ours to queue again (nor does a
    status that crossed the sender's own record of the send: `_sent_record`)."""
    message = (
        Message.objects.filter(
            channel=channel, direction=Message.Direction.OUT, provider_id=provider_id
        )
        .only("id", "outbox_id", "participant_id")
        .first()
    )
    if message is None:
        return Refusal(found=False, queued=False)
    to = message.participant_id
    if message.outbox_id is None:
        return Refusal(found=True, queued=False, participant_id=to)
    superseded = f"{SUPERSEDED}{provider_id}"[:200]
    with transaction.atomic():
        row = (
            Outbox.objects.select_for_update()
            .filter(pk=message.outbox_id, status__in=(Outbox.Status.SENT, Outbox.Status.SENDING))
            .only("id", "attempts")
            .first()
        )
        if row is None:
            return Refusal(found=True, queued=False, participant_id=to)
        mine = Outbox.objects.filter(pk=row.pk)
        if not _goes_again(error, row.attempts):
            mine.update(status=Outbox.Status.FAILED, error=f"{error}; attempts spent"[:300])
            return Refusal(found=True, queued=False, participant_id=to)
        _requeue(mine, error, row.attempts, now)
        Message.objects.filter(pk=message.pk, provider_id=provider_id).update(
            status=Message.Status.PENDING, provider_id=superseded, failed_at=None, error_code=""
        )
    return Refusal(found=True, queued=True, participant_id=to)


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before a row that failed its `attempts`-th try goes again: exponential, with
    "equal jitter" (uniform in the upper half of RETRY_BASE * 2 ** (attempts - 1), capped at
    RETRY_CAP), so that rows failing together spread out, and none comes back at once."""
    ceiling = min(RETRY_CAP, RETRY_BASE * 2 ** min(max(0, attempts - 1), 30))
    return ceiling / 2 + (rng or random).random() * ceiling / 2  # noqa: S311 - not secrecy


def _record(
    rows: list[ClaimedRow],
    messages: dict[int, int],
    results: list[SendResult | ChannelError],
    now: dt.datetime,
    report: SendReport,
) -> None:
    sent: list[tuple[int, str]] = []  # (message id, provider id)
    sent_rows: list[int] = []
    sent_per_enrollment: dict[int, int] = defaultdict(int)
    with transaction.atomic():
        for row, result in zip(rows, results, strict=True):
            message_id = messages[row.id]
            if isinstance(result, SendResult):
                sent.append((message_id, result.provider_id))
                sent_rows.append(row.id)
                if row.enrollment_id:
                    sent_per_enrollment[row.enrollment_id] += 1
            elif getattr(result, "maybe_accepted", False):
                # The provider may have accepted it: sending again could deliver it twice.
                # The row stays 'sending'; outbox_recover_stale asks the channel after the lease.
                Outbox.objects.filter(pk=row.id).update(error=str(result)[:300])
                report.unknown += 1
            elif _goes_again(result, row.attempts):
                _requeue(Outbox.objects.filter(pk=row.id), result, row.attempts, now)
                if getattr(result, "retry_after", None) is not None:
                    report.paced += 1
                elif result.retry_at is not None:
                    report.held += 1
                else:
                    report.retried += 1
            else:
                Message.objects.filter(pk=message_id).update(
                    status=Message.Status.FAILED, failed_at=now, error_code=result.code
                )
                Outbox.objects.filter(pk=row.id).update(
                    status=Outbox.Status.FAILED, error=str(result)[:300]
                )
                report.failed += 1
        _sent_record(sent, now)
        # Only rows still ours: a status webhook may already have queued one again (WhatsApp's
        # 131047 after accepting it: it goes again as a template).
        if sent_rows:
            Outbox.objects.filter(id__any=sent_rows, status=Outbox.Status.SENDING).update(
                status=Outbox.Status.SENT
            )
        by_count: dict[int, list[int]] = defaultdict(list)
        for enrollment_id, count in sent_per_enrollment.items():
            by_count[count].append(enrollment_id)
        for count, ids in by_count.items():
            Enrollment.objects.filter(id__any=ids).update(messages_sent=F("messages_sent") + count)
    report.sent += len(sent_rows)


def _sent_record(sent: list[tuple[int, str]], sent_at: dt.datetime) -> None:
    """Give each sent Message its provider id and its sent time in one statement per thousand
    rows (an UPDATE joined to a VALUES list; Django's bulk_update builds a CASE per row,
    several times slower, and this is the outbound path's hottest write). A status webhook
    may have been applied already (delivered, read): the status never moves back; and a send
    whose `failed` status came before this record (its Message already holds the id as
    `superseded:<id>`, queued again by outbox_requeue_refused or message_reengage) is left
    as that status put it."""
    table = _table(Message)
    pending, done = Message.Status.PENDING.value, Message.Status.SENT.value
    at = connection.ops.adapt_datetimefield_value(sent_at)
    status = f"CASE WHEN {table}.status = %s THEN %s ELSE {table}.status END"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if sent:
                cursor.execute(
                    f"UPDATE {table} SET provider_id = v.p, sent_at = %s, "  # noqa: S608
                    f"status = {status} FROM json_to_recordset(%s::json) AS v(id bigint, p text) "
                    f"WHERE {table}.id = v.id AND {table}.provider_id <> (%s || v.p)",
                    [
                        at,
                        pending,
                        done,
                        json.dumps([{"id": i, "p": p} for i, p in sent]),
                        SUPERSEDED,
                    ],
                )
            return
        for start in range(0, len(sent), 1000):
            chunk = sent[start : start + 1000]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params: list[Any] = [at, pending, done]
            for message_id, provider_id in chunk:
                params += [message_id, provider_id]
            cursor.execute(
                f"UPDATE {table} SET provider_id = v.column2, sent_at = %s, "  # noqa: S608
                f"status = {status} FROM (VALUES {values}) AS v WHERE {table}.id = v.column1 "
                f"AND {table}.provider_id <> (%s || v.column2)",
                [*params, SUPERSEDED],
            )


def outbox_recover_stale(*, now: dt.datetime, lease: dt.timedelta = LEASE) -> int:
    """Settle rows left 'sending' by a sender that died: ask the channel whether each went out.
    Sent ones are marked sent; ones the provider never saw go back to the queue; ones it cannot
    tell about are failed visibly rather than risk a duplicate.

    A Message whose provider id is a superseded one (sent again after Meta refused it by
    status) has not been confirmed: the channel is asked about the new send too."""
    settled = 0
    stale = Outbox.objects.filter(
        status=Outbox.Status.SENDING, claimed_at__lt=now - lease
    ).select_related("message")
    for row in stale:
        message = getattr(row, "message", None)
        with transaction.atomic():
            if message is None:
                Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.QUEUED, claimed_by="")
            elif provider_confirmed(message.provider_id):
                Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.SENT)
            else:
                try:
                    provider_id = get_channel(row.channel).reconcile(message.pk)
                except NotYetKnown:
                    continue  # another worker is applying what would tell: ask again later
                except ChannelError as exc:
                    Outbox.objects.filter(pk=row.pk).update(
                        status=Outbox.Status.FAILED, error=f"may have been sent: {exc}"[:300]
                    )
                    Message.objects.filter(pk=message.pk).update(
                        status=Message.Status.FAILED, failed_at=now, error_code="unknown"
                    )
                else:
                    if provider_id and provider_confirmed(provider_id):
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
