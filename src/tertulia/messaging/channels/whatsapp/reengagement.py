"""WhatsApp's 24-hour window on the send path (decision 0035).

1. His window is open (`tertulia.messaging.window`) and Meta has not said otherwise since:
   the message goes free-form.
2. It is closed: the first step of a program day goes as the day's opening template, and a
   service message that names a template (Outbox.template) goes as that template.
3. Closed, and the message has no template: it is held, queued, and goes the moment he writes
   (`outbox_release_held`); after HOLD_LIMIT without a word from him it fails visibly.
4. Meta answers 131047 although we thought the window open, at once or by a `failed` status
   after accepting: the message goes again as its template, once; without a template it is
   held as in 3. A template refused in turn is never resent: the message fails.

Each decision is recorded on the Message row's payload: `template` (the template it went as),
`window_closed_at` (when Meta closed the window on it), `reengaged_after` (the 131047 it was
sent again after, and how that came: "answer" or "status").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Min

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.channel import SUPERSEDED as CHANNEL_SUPERSEDED
from tertulia.messaging.channel import ChannelError, Outbound, SendResult
from tertulia.messaging.models import ChannelConfig, Message, MessageTemplate, Outbox
from tertulia.messaging.window import SERVICE_WINDOW, participants_in_window, window_closes_at
from tertulia.programs.models import Day, Step

from .templates import TEMPLATE_VALUES, pick_day_template, template_message, template_values

REENGAGEMENT = "131047"
# A held message is looked at again this often (and at once when he writes)...
HOLD_RECHECK = dt.timedelta(minutes=30)
# ...and fails after this long: by then the next day's opening is close.
HOLD_LIMIT = dt.timedelta(hours=23)
HELD = "window closed"  # how a held row's Outbox.error starts
# A Message sent again after a 131047 by status keeps the refused send's id under this prefix,
# so that late or repeated statuses of the refused send change nothing (and so that crash
# recovery does not take it for the new send's: messaging.channel.provider_confirmed).
SUPERSEDED = CHANNEL_SUPERSEDED


@dataclass
class Plan:
    """How one outbound goes, decided before the batch is sent. Without the window (a load
    test's channel) its Message is read only if Meta answers 131047 after all."""

    message_id: int
    free_form: bool
    loaded: Message | None = None
    template: MessageTemplate | None = None
    values: dict[str, str] | None = None
    missing_template: str = ""  # a service message named a template the registry lacks
    as_template: bool = False  # this send is the template

    @property
    def message(self) -> Message:
        if self.loaded is None:
            self.loaded = Message.objects.get(pk=self.message_id)
        return self.loaded

    def template_payload(self, outbound: Outbound, to: str) -> dict[str, Any]:
        assert self.template is not None
        return template_message(
            self.template, to=to, values=self.values or {}, reference=str(outbound.message_id)
        )


@dataclass
class _Sent:
    """What deciding a plan reads of a Message: its columns, not the model (a community post's
    49 copies would otherwise build 49 Messages with their relations to decide nothing)."""

    pk: int
    participant_id: int | None
    payload: dict[str, Any]
    step: Step | None
    enrollment_id: int | None
    enrollment: Enrollment | None = None


def plans_for(outbounds: Sequence[Outbound], config: ChannelConfig, now: dt.datetime) -> list[Plan]:
    """One Plan per outbound, with a handful of queries for the whole batch."""
    if not config.service_window:
        return [Plan(message_id=o.message_id, free_form=True) for o in outbounds]
    rows: dict[int, _Sent] = {}
    step_of: dict[int, int] = {}
    for pk, participant_id, payload, enrollment_id, step_id in Message.objects.filter(
        pk__any=[o.message_id for o in outbounds]
    ).values_list("pk", "participant_id", "payload", "enrollment_id", "outbox__step_id"):
        rows[pk] = _Sent(pk, participant_id, payload or {}, None, enrollment_id)
        if step_id is not None:
            step_of[pk] = step_id
    steps = Step.objects.select_related("day__topic").in_bulk(set(step_of.values()))
    for pk, step_id in step_of.items():
        rows[pk].step = steps.get(step_id)
    open_now = participants_in_window(
        {r.participant_id for r in rows.values() if r.participant_id}, at=now
    )
    templates = list(MessageTemplate.objects.filter(channel=config, active=True))
    first_positions = dict(
        Step.objects.filter(day_id__in={s.day_id for s in steps.values()})
        .values("day_id")
        .annotate(first=Min("position"))
        .values_list("day_id", "first")
    )
    # A program day's opening or a named template needs his enrollment (the curriculum's
    # values, his current day): only those are read.
    wanted = {
        rows[o.message_id].enrollment_id
        for o in outbounds
        if rows[o.message_id].enrollment_id and (o.template or rows[o.message_id].step)
    }
    if wanted:
        enrollments = Enrollment.objects.select_related("cohort__curriculum__program").in_bulk(
            wanted
        )
        for row in rows.values():
            row.enrollment = enrollments.get(row.enrollment_id) if row.enrollment_id else None
    return [
        _plan(outbound, rows[outbound.message_id], open_now, templates, first_positions)
        for outbound in outbounds
    ]


def _plan(
    outbound: Outbound,
    row: _Sent,
    open_now: set[int],
    templates: list[MessageTemplate],
    first_positions: dict[int, int],
) -> Plan:
    free_form = row.participant_id in open_now and not _closed_by_meta(
        row.payload, row.participant_id
    )
    # The template is found even inside the window: Meta may disagree (131047).
    plan = Plan(message_id=row.pk, free_form=free_form)
    step = row.step
    curriculum = row.enrollment.cohort.curriculum if row.enrollment else None
    day: Day | None = None
    if step is not None:
        if step.position == first_positions.get(step.day_id):
            day = step.day
            plan.template = pick_day_template(templates, day.number)
    elif outbound.template:
        plan.template = next((t for t in templates if t.name == outbound.template), None)
        if plan.template is None:
            plan.missing_template = outbound.template
        elif plan.template.parameters and row.enrollment and curriculum:
            day = (
                Day.objects.filter(curriculum=curriculum, number=row.enrollment.current_day)
                .select_related("topic")
                .first()
            )
    if plan.template is not None:
        plan.values = template_values(day=day, curriculum=curriculum)
        # Values the message brought (a digest invitation's count of posts), program values
        # only: the registry refuses any other parameter name.
        plan.values.update(
            {k: v for k, v in outbound.template_values.items() if k in TEMPLATE_VALUES}
        )
    return plan


def _closed_by_meta(payload: dict[str, Any], participant_id: int | None) -> bool:
    """Meta said his window was closed when it refused this message; it is open again only
    if he has written since."""
    closed_at = payload.get("window_closed_at")
    if not closed_at or not participant_id:
        return False
    closes = window_closes_at(participant_id)
    return closes is None or closes - SERVICE_WINDOW <= dt.datetime.fromisoformat(closed_at)


def not_free_form(plan: Plan, now: dt.datetime, channel: str) -> ChannelError | None:
    """Outside the window: the error that holds or fails the message, or None when it goes
    as its template (recorded on the Message now, before the send)."""
    if plan.template is not None:
        plan.as_template = True
        _record(plan.message, template=plan.template.name)
        return None
    if plan.missing_template:
        return ChannelError(
            f"{HELD}, and template '{plan.missing_template}' is not in the registry of "
            f"{channel}: add it (admin or `tertulia channel templates load`)",
            code="no_template",
            permanent=True,
        )
    return hold(plan.message, now)


def hold(message: Message, now: dt.datetime) -> ChannelError:
    """Keep a message he cannot get free-form until he writes; fail it after HOLD_LIMIT."""
    if now - message.created_at >= HOLD_LIMIT:
        hours = int(HOLD_LIMIT.total_seconds() // 3600)
        return ChannelError(
            f"{HELD}: he has not written for {hours} h and this message has no template",
            code="window_closed",
            permanent=True,
        )
    return ChannelError(
        f"{HELD}: held until he writes (no template for this message)",
        code="window_closed",
        retry_at=now + HOLD_RECHECK,
    )


def resend_refused(
    outbounds: Sequence[Outbound],
    plans: list[Plan],
    results: list[SendResult | ChannelError],
    *,
    to: Callable[[Outbound], str],
    send: Callable[[list[dict[str, Any]]], list[Any]],
    outcome: Callable[[Any], SendResult | ChannelError],
    now: dt.datetime,
) -> None:
    """Meta answered 131047 at once: send each refused free-form message again as its
    template, once, in one more round; replaces the results in place."""
    again: list[int] = []
    for index, result in enumerate(results):
        if not isinstance(result, ChannelError) or result.code != REENGAGEMENT:
            continue
        plan = plans[index]
        if plan.as_template or plan.message.payload.get("reengaged_after"):
            results[index] = ChannelError(
                f"{result}; refused again outside the window: not sent again",
                code=REENGAGEMENT,
                permanent=True,
            )
            continue
        _record(
            plan.message,
            window_closed_at=now.isoformat(),
            reengaged_after={"code": int(REENGAGEMENT), "via": "answer"},
        )
        if plan.template is None:
            results[index] = hold(plan.message, now)
            continue
        plan.as_template = True
        _record(plan.message, template=plan.template.name)
        again.append(index)
    if not again:
        return
    payloads = [plans[i].template_payload(outbounds[i], to(outbounds[i])) for i in again]
    for index, sent in zip(again, send(payloads), strict=True):
        result = outcome(sent)
        if isinstance(result, ChannelError) and result.code == REENGAGEMENT:
            result = ChannelError(
                f"{result}; the template was refused too: not sent again",
                code=REENGAGEMENT,
                permanent=True,
            )
        results[index] = result


def message_reengage(*, channel: str, provider_id: str, at: dt.datetime, now: dt.datetime) -> bool:
    """A `failed` status with 131047 for a message Meta had accepted: queue its Outbox row
    again, to go as its template (or be held until he writes). Once per message: one that
    already went as a template, or was sent again before, stays failed. True if queued."""
    message = (
        Message.objects.filter(
            channel=channel, direction=Message.Direction.OUT, provider_id=provider_id
        )
        .only("id", "payload", "outbox_id")
        .first()
    )
    if message is None or message.outbox_id is None:
        return False
    if message.payload.get("template") or message.payload.get("reengaged_after"):
        return False
    payload = {
        **message.payload,
        "window_closed_at": at.isoformat(),
        "reengaged_after": {"code": int(REENGAGEMENT), "via": "status"},
    }
    with transaction.atomic():
        moved = Outbox.objects.filter(
            pk=message.outbox_id, status__in=(Outbox.Status.SENT, Outbox.Status.SENDING)
        ).update(
            status=Outbox.Status.QUEUED,
            claimed_by="",
            due_at=now,
            error=f"{REENGAGEMENT} by status webhook: goes again outside the window",
        )
        if moved:
            Message.objects.filter(pk=message.pk).update(
                payload=payload,
                status=Message.Status.PENDING,
                provider_id=f"{SUPERSEDED}{provider_id}"[:200],
                failed_at=None,
                error_code="",
            )
    return bool(moved)


def outbox_release_held(*, participant_ids: set[int], channel: str, now: dt.datetime) -> int:
    """He wrote: his window is open, so what was held for it goes now."""
    if not participant_ids:
        return 0
    return Outbox.objects.filter(
        participant_id__in=participant_ids,
        channel=channel,
        status=Outbox.Status.QUEUED,
        error__startswith=HELD,
        due_at__gt=now,
    ).update(due_at=now)


def _record(message: Message, **entries: Any) -> None:
    message.payload = {**message.payload, **entries}
    Message.objects.filter(pk=message.pk).update(payload=message.payload)
