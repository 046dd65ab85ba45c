"""The demo's community side: a facilitator account for the simulated cohorts, and a way to
write as one of the simulated men, so that a new user can watch an alert or a held post reach
the inbox on `tertulia serve`. Never touches a real cohort."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.selectors import Reach, post_reach, pseudonyms_in
from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.messaging.tasks import message_route_and_send
from tertulia.safety.models import Alert

DEMO_FACILITATOR = "facilitador"


class DemoRefused(ValueError):
    """What to change so the demo command can run."""


def demo_facilitator_setup(cohorts: Sequence[Cohort]) -> tuple[Any, str | None]:
    """Give the simulated cohorts one facilitator, and the last one pre-moderation, so that
    both paths (relayed at once, held for approval) can be tried. Returns the user and his new
    password (None when the account already existed: its password is left alone)."""
    users = get_user_model().objects
    user = users.filter(username=DEMO_FACILITATOR).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(9)
        user = users.create_user(DEMO_FACILITATOR, password=password)
    Cohort.objects.filter(pk__in=[c.pk for c in cohorts], simulated=True).update(facilitator=user)
    if len(cohorts) > 1:
        Cohort.objects.filter(pk=cohorts[-1].pk, simulated=True).update(
            moderation=Cohort.Moderation.PRE
        )
    return user, password


@dataclass(frozen=True)
class Written:
    message: Message
    pseudonym: str
    alerts: list[str]
    post_status: str | None  # relayed | held | None (not a post: PRIVADO, a keyword...)
    in_program: bool  # False: his 30 days ended or he left, so he cannot post to the group
    reach: Reach | None = None  # of a relayed post


def demo_message_write(
    *, cohort_name: str, pseudonym: str | None, text: str, now: dt.datetime | None = None
) -> Written:
    """Write `text` as the simulated man `pseudonym` of the simulated cohort `cohort_name`:
    stored and routed as if it had come from his phone (triage, relay or hold). Without a
    pseudonym, the first man still in the program and the community writes."""
    now = now or clock.now()
    cohort = Cohort.objects.filter(name=cohort_name).first()
    if cohort is None:
        known = ", ".join(Cohort.objects.filter(simulated=True).values_list("name", flat=True))
        known = known or "none yet (run tertulia demo first)"
        raise DemoRefused(f"no cohort named '{cohort_name}'; the demo's cohorts are: {known}")
    if not cohort.simulated:
        raise DemoRefused(f"'{cohort_name}' is a real cohort; only simulated men can be written as")
    names = pseudonyms_in([cohort.pk])
    if pseudonym is None:
        in_community = (
            cohort.enrollments.filter(state__in=Enrollment.RECEIVING)
            .exclude(membership__in_community=False)
            .order_by("pk")
        )
        enrollment_id = in_community.values_list("pk", flat=True).first()
        if enrollment_id is None:
            raise DemoRefused(f"nobody in {cohort_name} is still in the program to write")
    else:
        wanted = pseudonym.strip().casefold()
        enrollment_id = next((e for e, n in names.items() if n.casefold() == wanted), None)
    if enrollment_id is None:
        raise DemoRefused(
            f"nobody in {cohort_name} is called '{pseudonym}'; try 'Pata 1' to 'Pata {len(names)}'"
        )
    enrollment = cohort.enrollments.select_related("participant").get(pk=enrollment_id)
    message, _ = message_record_inbound(
        Inbound(
            channel=cohort.channel,
            address=enrollment.participant.phone,
            provider_id=f"demo-{uuid.uuid4().hex}",
            received_at=now,
            text=text,
        )
    )
    # Routed and sent here, as a worker would: routing alone queues no task, so a running
    # `tertulia serve` would leave the copies waiting.
    message_route_and_send(message_id=message.pk, now=now)
    post = getattr(Message.objects.select_related("post").get(pk=message.pk), "post", None)
    return Written(
        message=message,
        pseudonym=names[enrollment_id],
        alerts=list(Alert.objects.filter(message=message).values_list("category", flat=True)),
        post_status=post.status if post is not None else None,
        in_program=enrollment.state in Enrollment.RECEIVING,
        reach=post_reach([post.pk]).get(post.pk, Reach()) if post is not None else None,
    )
