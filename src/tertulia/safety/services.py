"""Safety triage on top of the classifier: raise alerts, hold the message, reply to him with
the referral that fits, notify the facilitator at once and the supervisors when nobody has
handled an alert in time, and write every staff action to the audit log.

Holding: a message is held while an Alert points at it (`message_is_held`). Triage routes a
flagged message to the facilitator; the community relay must check `message_is_held` before
relaying anything and leave a held message to a facilitator's decision.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.messaging.services import service_message_queue
from tertulia.safety.classifier import configured_classifier
from tertulia.safety.models import URGENCY, Alert, AuditLog, Category, Notification, Referral
from tertulia.safety.texts import closing_for, opening_for

log = logging.getLogger(__name__)

SUPERVISOR_GROUP = "supervisor"
DEFAULT_ESCALATE_MINUTES = 15
DEFAULT_COUNTRY = "PE"


def escalate_after() -> dt.timedelta:
    minutes = getattr(settings, "TERTULIA_ALERT_ESCALATE_MINUTES", DEFAULT_ESCALATE_MINUTES)
    return dt.timedelta(minutes=float(minutes))


def supervisors() -> QuerySet[Any]:
    return (
        get_user_model()
        # Superusers count, as in is_supervisor: on a fresh install the only account is the
        # operator's, and an escalation must still reach a person.
        .objects.filter(Q(groups__name=SUPERVISOR_GROUP) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("pk")
    )


def is_supervisor(user: Any) -> bool:
    return bool(user.is_superuser or user.groups.filter(name=SUPERVISOR_GROUP).exists())


# --- audit ---------------------------------------------------------------------------------


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    now: dt.datetime | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one entry. `actor` None means the system did it."""
    return AuditLog.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        at=now or clock.now(),
        details=details or {},
    )


# --- triage --------------------------------------------------------------------------------


def message_is_held(message_id: int) -> bool:
    """Whether triage holds this message: it must not be relayed without a facilitator."""
    return Alert.objects.filter(message_id=message_id).exists()


def message_triage(message: Message, now: dt.datetime) -> list[Alert]:
    """Classify one inbound message; on a hit raise one Alert per category, hold the message
    (route it to the facilitator) and queue one caring reply to him. Idempotent: a message
    that already has alerts is left as it is. Never deletes or drops the message."""
    if message.direction != Message.Direction.IN or not message.body:
        return []
    if Alert.objects.filter(message=message).exists():
        message.route = Message.Route.FACILITATOR
        return []
    triage = configured_classifier().classify(message.body)
    if not triage.flagged:
        return []
    message.route = Message.Route.FACILITATOR
    alerts = []
    for category in triage.categories:
        evidence = [e.as_dict() for e in triage.evidence if e.category == category]
        alerts.append(alert_raise(message=message, category=category, evidence=evidence, now=now))
    if triage.error is not None:
        log.warning("triage failed on message %s; held for a person", message.pk)
        alerts.append(
            alert_raise(
                message=message,
                category=Category.TRIAGE_ERROR,
                evidence=[{"error": triage.error}],
                now=now,
            )
        )
    if triage.categories:
        triage_reply_queue(message, triage.categories, now)
    return alerts


def referrals_for(categories: Iterable[str], country: str | None = None) -> list[Referral]:
    """The referrals that fit. For self-harm: the mental-health line first, and of the
    violence services only the hotline, so a man in crisis gets a short message."""
    cats = set(categories)
    country = country or getattr(settings, "TERTULIA_COUNTRY", DEFAULT_COUNTRY)
    chosen = [
        referral
        for referral in Referral.objects.filter(country=country, active=True)
        if cats & set(referral.categories)
    ]
    if Category.SELF_HARM in cats:
        chosen = [
            r
            for r in chosen
            if Category.SELF_HARM in r.categories or r.kind == Referral.Kind.HOTLINE
        ]
        chosen.sort(key=lambda r: Category.SELF_HARM not in r.categories)
    return chosen


def triage_reply_text(categories: Sequence[str], language: str) -> str:
    cats = [c for c in URGENCY if c in categories]
    if cats == [Category.HARASSMENT]:
        return opening_for(Category.HARASSMENT, language)
    lead = next(c for c in cats if c != Category.HARASSMENT)
    lines = [f"• {r.text_for(language)}" for r in referrals_for(cats)]
    parts = [opening_for(lead, language)]
    if lines:
        parts.append("\n".join(lines))
    parts.append(closing_for(language))
    return "\n\n".join(parts)


def triage_reply_queue(message: Message, categories: Sequence[str], now: dt.datetime) -> None:
    """One reply per message, to him alone on the channel he wrote from."""
    participant = message.participant
    if participant is None:
        return  # an unknown number: the alert is raised, but there is no one to answer
    service_message_queue(
        participant=participant,
        enrollment=message.enrollment,
        channel=message.channel,
        text=triage_reply_text(categories, participant.language),
        now=now,
    )


# --- alerts --------------------------------------------------------------------------------


def alert_raise(
    *, message: Message, category: str, evidence: list[dict[str, Any]], now: dt.datetime
) -> Alert:
    """Raise (once) the alert for one category of one message and notify the cohort's
    facilitator at once; with no facilitator, the supervisors are told straight away."""
    enrollment = message.enrollment
    cohort = enrollment.cohort if enrollment is not None else None
    alert, created = Alert.objects.get_or_create(
        message=message,
        category=category,
        defaults={
            "participant": message.participant,
            "enrollment": enrollment,
            "cohort": cohort,
            "evidence": evidence,
            "created_at": now,
        },
    )
    if not created:
        return alert
    audit_record(
        actor=None, action="alert.raise", obj=alert, now=now, details={"category": category}
    )
    facilitator = cohort.facilitator if cohort is not None else None
    if facilitator is not None and facilitator.is_active:
        _notify([facilitator], alert, Notification.Kind.ALERT, now)
        alert.notified_facilitator_at = now
        alert.save(update_fields=["notified_facilitator_at"])
    else:
        _escalate(alert, now)
    return alert


def _notify(users: Iterable[Any], alert: Alert, kind: str, now: dt.datetime) -> int:
    rows = [Notification(recipient=u, alert=alert, kind=kind, created_at=now) for u in users]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _escalate(alert: Alert, now: dt.datetime) -> bool:
    """Mark escalated (once, even with several tickers) and notify the supervisors."""
    if not Alert.objects.filter(pk=alert.pk, escalated_at__isnull=True).update(escalated_at=now):
        return False
    alert.escalated_at = now
    people = list(supervisors())
    _notify(people, alert, Notification.Kind.ESCALATION, now)
    audit_record(
        actor=None,
        action="alert.escalate",
        obj=alert,
        now=now,
        details={"supervisors": [u.pk for u in people]},
    )
    if not people:
        log.error("alert %s escalated but there is no active supervisor", alert.pk)
    return True


def alerts_escalate_due(now: dt.datetime) -> int:
    """Escalate every alert still open `TERTULIA_ALERT_ESCALATE_MINUTES` (15) after it was
    raised. Idempotent; safe to run from several tickers. Returns how many were escalated."""
    due = Alert.objects.filter(
        status=Alert.Status.OPEN,
        escalated_at__isnull=True,
        created_at__lte=now - escalate_after(),
    ).order_by("created_at")
    escalated = 0
    for alert in due:
        with transaction.atomic():
            escalated += _escalate(alert, now)
    return escalated


def alerts_open_for_facilitator(user: Any) -> QuerySet[Alert]:
    """Open alerts this person may handle, most urgent first: a facilitator sees his cohorts,
    a supervisor (or superuser) sees them all."""
    alerts = Alert.objects.filter(status=Alert.Status.OPEN)
    if not is_supervisor(user):
        alerts = alerts.filter(cohort__facilitator=user)
    urgency = Case(
        *[When(category=c, then=Value(i)) for i, c in enumerate(URGENCY)],
        output_field=IntegerField(),
    )
    return alerts.select_related("cohort", "participant", "message").order_by(
        urgency, "created_at", "pk"
    )


def alert_can_handle(alert: Alert, user: Any) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if is_supervisor(user):
        return True
    return alert.cohort is not None and alert.cohort.facilitator_id == user.pk


def alert_resolve(alert: Alert, user: Any, note: str = "", now: dt.datetime | None = None) -> Alert:
    """Mark an alert handled, with his note; audit-logged. Resolving twice changes nothing."""
    now = now or clock.now()
    if not alert_can_handle(alert, user):
        raise PermissionDenied("this alert belongs to another facilitator's cohort")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status == Alert.Status.HANDLED:
            return locked
        locked.status = Alert.Status.HANDLED
        locked.handled_by = user
        locked.handled_at = now
        locked.note = note
        locked.save(update_fields=["status", "handled_by", "handled_at", "note"])
        Notification.objects.filter(alert=locked, read_at__isnull=True).update(read_at=now)
        audit_record(
            actor=user,
            action="alert.resolve",
            obj=locked,
            now=now,
            details={"category": locked.category, "with_note": bool(note)},
        )
    return locked
