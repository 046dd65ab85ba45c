"""The router decides what an inbound message means: a keyword, a check-in answer, or a
message for his facilitator. Nothing is ever dropped: whatever is not understood waits for a
person."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from django.db import IntegrityError, transaction

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.models import CheckInResponse, Message, Outbox
from tertulia.messaging.pipeline import Then, send_recorded
from tertulia.messaging.sender import outbox_send_start
from tertulia.messaging.services import engagement_record, service_message_queue
from tertulia.messaging.signals import inbound_routed
from tertulia.messaging.texts import text_for
from tertulia.programs.models import Step

# What a routing task sends itself, at most (a post's copies to a community of ~50, a
# keyword's answer), in claims of ROUTED_SEND_BATCH; a larger fan-out is left to
# send_outbox_task.
ROUTED_SEND_LIMIT = 200
ROUTED_SEND_BATCH = 100

# Keyword → action. Spanish first; English for participants who write it.
KEYWORDS = {
    "BAJA": "stop",
    "STOP": "stop",
    "ALTO": "stop",
    "CANCELAR": "stop",
    "UNSUBSCRIBE": "stop",
    "AYUDA": "help",
    "HELP": "help",
    "SOCORRO": "help",
    "VOLVER": "start",
    "START": "start",
    "ALTA": "start",
    "REGRESAR": "start",
}


def normalize_keyword(text: str) -> str:
    """'  baja!! ' → 'BAJA'; 'Ayúdame' is not 'AYUDA' (only the whole message is a keyword)."""
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z]", "", stripped).upper()


def message_route(*, message_id: int, now: dt.datetime) -> str:
    """Route one stored inbound message; idempotent (a routed message is left as it is)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("participant", "enrollment__cohort__curriculum")
            .get(pk=message_id)
        )
        if message.status == Message.Status.ROUTED:
            return message.route
        message.route = _route(message, now)
        inbound_routed.send(sender=Message, message=message, now=now)
        route = message.route
        message.status = Message.Status.ROUTED
        message.save(update_fields=["route", "status", "keyword"])
        enrollment = message.enrollment
        if enrollment is not None and enrollment.state != Enrollment.State.OPTED_OUT:
            engagement_record(enrollment.pk, message.created_at, replies=1)
    return route


def outbox_send_routed(
    *, now: dt.datetime, limit: int = ROUTED_SEND_LIMIT, then: Then | None = None
) -> int:
    """Send what routing at `now` queued (every row it writes is created at `now` and due at
    once), oldest first, claimed by id: the others' copies of a post leave from the task that
    routed it, ahead of any backlog of program content in the Outbox. Returns how many rows it
    took; each batch's report goes to `then` once recorded, here or on the process's recorder
    thread (messaging.pipeline)."""
    ids = list(
        Outbox.objects.filter(
            status=Outbox.Status.QUEUED, due_at__lte=now, step__isnull=True, created_at=now
        )
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    for start in range(0, len(ids), ROUTED_SEND_BATCH):
        send_recorded(outbox_send_start(now=now, ids=ids[start : start + ROUTED_SEND_BATCH]), then)
    return len(ids)


def _route(message: Message, now: dt.datetime) -> str:
    keyword = KEYWORDS.get(normalize_keyword(message.body)) if message.body else None
    if keyword:
        message.keyword = keyword
        _keyword(keyword, message, now)
        return Message.Route.KEYWORD
    if message.enrollment_id and _checkin_answer(message):
        return Message.Route.CHECKIN
    return Message.Route.FACILITATOR


def _reply(message: Message, key: str, now: dt.datetime) -> None:
    if message.participant is None:
        return
    service_message_queue(
        participant=message.participant,
        enrollment=message.enrollment,
        channel=message.channel,
        text=text_for(key, message.participant.language),
        now=now,
    )


def _keyword(keyword: str, message: Message, now: dt.datetime) -> None:
    enrollment = message.enrollment
    if keyword == "help":
        _reply(message, "help", now)
    elif keyword == "stop":
        if enrollment and enrollment.state in Enrollment.RECEIVING:
            Enrollment.objects.filter(pk=enrollment.pk).update(
                state=Enrollment.State.OPTED_OUT, ended_at=now
            )
            # Nothing of the program goes after BAJA, not even what was already queued.
            Outbox.objects.filter(
                enrollment=enrollment, step__isnull=False, status=Outbox.Status.QUEUED
            ).update(status=Outbox.Status.CANCELLED)
            enrollment.state = Enrollment.State.OPTED_OUT
            _reply(message, "opted_out", now)
        elif enrollment is None:
            _reply(message, "opted_out", now)
        # A second BAJA gets no second confirmation: one confirmation, then silence.
    elif keyword == "start":
        last_day = enrollment.cohort.curriculum.last_day if enrollment else -1
        if (
            enrollment
            and enrollment.state == Enrollment.State.OPTED_OUT
            and enrollment.current_day < last_day
        ):
            Enrollment.objects.filter(pk=enrollment.pk).update(
                state=Enrollment.State.ACTIVE, ended_at=None, last_engaged_at=now
            )
            enrollment.state = Enrollment.State.ACTIVE
            _reply(message, "rejoined", now)
        elif enrollment is None or enrollment.state not in Enrollment.RECEIVING:
            _reply(message, "not_enrolled", now)


def _checkin_answer(message: Message) -> bool:
    """Record a check-in answer: a button reply carries its question; a typed answer counts
    when it matches a button of the last question he was sent."""
    enrollment = message.enrollment
    assert enrollment is not None
    step: Step | None = None
    answer = ""
    button_id = str(message.payload.get("button_id", ""))
    if button_id.startswith("ci:"):
        _, step_id, answer = button_id.split(":", 2)
        step = (
            Step.objects.filter(pk=int(step_id), kind=Step.Kind.CHECKIN)
            .select_related("day")
            .first()
            if step_id.isdigit()
            else None
        )
    elif message.body:
        last = (
            Outbox.objects.filter(
                enrollment=enrollment, step__kind=Step.Kind.CHECKIN, status=Outbox.Status.SENT
            )
            .select_related("step__day")
            .order_by("-id")
            .first()
        )
        typed = normalize_keyword(message.body)
        if last and last.step:
            for button in last.step.buttons:
                if typed and typed in {
                    normalize_keyword(button["title"]),
                    normalize_keyword(button["key"]),
                }:
                    step, answer = last.step, button["key"]
                    break
    if step is None or answer not in {b["key"] for b in step.buttons}:
        return False
    try:
        with transaction.atomic():
            CheckInResponse.objects.create(
                enrollment=enrollment,
                step=step,
                day=step.day.number,
                answer_key=answer,
                message=message,
                answered_at=message.created_at,
            )
    except IntegrityError:
        return True  # he already answered this question; the first answer stands
    engagement_record(enrollment.pk, message.created_at, checkins=1)
    return True
