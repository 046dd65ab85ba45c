"""Reads for the facilitator inbox. Access is decided here, once: a facilitator sees his own
cohorts; a supervisor sees the program."""

from __future__ import annotations

import datetime as dt
import statistics
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min, QuerySet
from django.http import Http404

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.models import (
    CommunityPost,
    InboxSeen,
    Membership,
    PostDelivery,
    PrivateReply,
    QuickReply,
)
from tertulia.messaging.models import Message
from tertulia.programs.models import Program
from tertulia.safety.models import Alert
from tertulia.safety.services import is_supervisor


def _private_waiting() -> QuerySet[Message]:
    """Inbound messages for the facilitator alone (PRIVADO, or written outside the community)
    that nobody has handled. Community posts are not here: they are in the cohort feed and the
    held queue."""
    return Message.objects.filter(
        direction=Message.Direction.IN,
        route=Message.Route.FACILITATOR,
        handled_at__isnull=True,
        # A message that raised an alert is shown with its alert, not twice.
        alerts__isnull=True,
        post__isnull=True,
    )


def messages_waiting_for(user: Any) -> QuerySet[Message]:
    """Private messages in this person's cohorts that wait for an answer."""
    waiting = _private_waiting()
    if not is_supervisor(user):
        waiting = waiting.filter(enrollment__cohort__facilitator=user)
    return waiting.select_related("enrollment__cohort").order_by("created_at", "pk")


def access_message(user: Any, message_id: int) -> Message:
    """The inbound message `message_id` if `user` may handle it; 404 otherwise (an outsider
    must not learn that it exists)."""
    message = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.IN)
        .select_related("enrollment__cohort")
        .first()
    )
    if message is None:
        raise Http404
    if is_supervisor(user):
        return message
    cohort = message.enrollment.cohort if message.enrollment else None
    if cohort is None or cohort.facilitator_id != user.pk:
        raise Http404
    return message


def _held() -> QuerySet[CommunityPost]:
    return CommunityPost.objects.filter(
        status=CommunityPost.Status.HELD, message__alerts__isnull=True
    )


def waiting_in(cohort_ids: Iterable[int]) -> int:
    """What waits for a facilitator in these cohorts, counted as the inbox lists it: open
    alerts, posts held for approval and private messages nobody has handled."""
    ids = list(cohort_ids)
    return (
        Alert.objects.filter(status=Alert.Status.OPEN, cohort_id__in=ids).count()
        + _held().filter(cohort_id__in=ids).count()
        + _private_waiting().filter(enrollment__cohort_id__in=ids).count()
    )


def posts_held_for(user: Any) -> QuerySet[CommunityPost]:
    """Posts waiting for approval in this person's cohorts, oldest first."""
    # A post that raised an alert is shown with its alert, and triage's hold is final:
    # `post_approve` refuses it, so offering it here would be a button that does nothing.
    held = _held()
    if not is_supervisor(user):
        held = held.filter(cohort__facilitator=user)
    return held.select_related("cohort", "author").order_by("created_at", "pk")


def access_post(user: Any, post_id: int) -> CommunityPost:
    post = CommunityPost.objects.filter(pk=post_id).select_related("cohort", "author").first()
    if post is None or not (is_supervisor(user) or post.cohort.facilitator_id == user.pk):
        raise Http404
    return post


# --- cohorts, members and threads (the inbox's pages) ---------------------------------------


def cohorts_for(user: Any) -> QuerySet[Cohort]:
    """The cohorts this person may see: a facilitator his own, a supervisor (or superuser)
    every program's."""
    cohorts = Cohort.objects.select_related("program")
    if not is_supervisor(user):
        cohorts = cohorts.filter(facilitator=user)
    return cohorts.order_by("program__name", "start_date", "pk")


def access_cohort(user: Any, cohort_id: int) -> Cohort:
    """The cohort if `user` may see it; 404 otherwise, so an outsider learns nothing."""
    cohort = cohorts_for(user).filter(pk=cohort_id).first()
    if cohort is None:
        raise Http404
    return cohort


def access_enrollment(user: Any, enrollment_id: int) -> Enrollment:
    """One man's place in a cohort this person may see; 404 otherwise."""
    enrollment = (
        Enrollment.objects.filter(pk=enrollment_id, cohort__in=cohorts_for(user))
        .select_related("cohort", "participant")
        .first()
    )
    if enrollment is None:
        raise Http404
    return enrollment


@dataclass(frozen=True)
class Member:
    enrollment: Enrollment
    pseudonym: str
    in_community: bool
    unread: int  # his private messages nobody has handled yet


def pseudonyms_in(cohort_ids: Iterable[int]) -> dict[int, str]:
    """enrollment id → pseudonym, for every man in these cohorts. A man who never posted has
    no Membership yet; he is named as `membership_for` will name him ("Pata <rank>")."""
    ids = list(cohort_ids)
    named = dict(
        Membership.objects.filter(cohort_id__in=ids).values_list("enrollment_id", "pseudonym")
    )
    ranks: dict[int, int] = {}
    names: dict[int, str] = {}
    for enrollment_id, cohort_id in (
        Enrollment.objects.filter(cohort_id__in=ids).order_by("pk").values_list("pk", "cohort_id")
    ):
        ranks[cohort_id] = ranks.get(cohort_id, 0) + 1
        names[enrollment_id] = named.get(enrollment_id, f"Pata {ranks[cohort_id]}")
    return names


def pseudonym_of(enrollment: Enrollment | None) -> str:
    if enrollment is None:
        return "—"
    return pseudonyms_in([enrollment.cohort_id]).get(enrollment.pk, "—")


def members_of(cohort: Cohort) -> list[Member]:
    """Everyone in the cohort, men with unread private messages first."""
    names = pseudonyms_in([cohort.pk])
    left = set(
        Membership.objects.filter(cohort=cohort, in_community=False).values_list(
            "enrollment_id", flat=True
        )
    )
    unread = dict(
        _private_waiting()
        .filter(enrollment__cohort=cohort)
        .values_list("enrollment_id")
        .annotate(n=Count("pk"))
        .values_list("enrollment_id", "n")
    )
    members = [
        Member(
            enrollment=e,
            pseudonym=names.get(e.pk, "—"),
            in_community=e.pk not in left,
            unread=unread.get(e.pk, 0),
        )
        for e in Enrollment.objects.filter(cohort=cohort).order_by("pk")
    ]
    return sorted(members, key=lambda m: (-m.unread, m.enrollment.pk))


def cohort_feed(cohort: Cohort, limit: int = 50) -> list[CommunityPost]:
    """The community's latest posts, newest first (held ones included, marked as such)."""
    return list(
        CommunityPost.objects.filter(cohort=cohort)
        .select_related("author", "facilitator")
        .order_by("-created_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class Reach:
    """Who a relayed post reached: copies sent at once (inside their 24-hour window), and men
    it waits for, or went to, in a digest."""

    live: int = 0
    digest: int = 0


def post_reach(post_ids: Iterable[int]) -> dict[int, Reach]:
    """The reach of each post, in one query."""
    reach: dict[int, Reach] = {}
    rows = (
        PostDelivery.objects.filter(post_id__in=list(post_ids))
        .values_list("post_id", "via")
        .annotate(n=Count("id"))
    )
    for post_id, via, n in rows:
        live = n if via == PostDelivery.Via.LIVE else 0
        before = reach.get(post_id, Reach())
        reach[post_id] = Reach(live=before.live + live, digest=before.digest + n - live)
    return reach


def feed_with_reach(cohort: Cohort, limit: int = 50) -> list[CommunityPost]:
    """cohort_feed, each relayed post with its `reach`."""
    feed = cohort_feed(cohort, limit)
    reach = post_reach(p.pk for p in feed if p.status == CommunityPost.Status.RELAYED)
    for post in feed:
        post.reach = reach.get(post.pk, Reach())  # type: ignore[attr-defined]
    return feed


@dataclass(frozen=True)
class ThreadEntry:
    at: dt.datetime
    kind: str  # checkin | post | private | keyword | reply
    text: str
    message: Message | None = None
    by: str = ""
    post_status: str = ""  # of a post: relayed | held | retracted
    alerts: tuple[tuple[str, str], ...] = ()  # (category label, open | handled)


def thread_of(enrollment: Enrollment, limit: int = 100) -> list[ThreadEntry]:
    """What he wrote (check-in answers, posts, private messages, keywords) and what the
    facilitator answered him privately, oldest first; the last `limit` entries."""
    entries: list[ThreadEntry] = []
    inbound = list(
        Message.objects.filter(enrollment=enrollment, direction=Message.Direction.IN)
        .select_related("post")
        .order_by("-created_at", "-pk")[:limit]
    )
    raised: dict[int, list[tuple[str, str]]] = {}
    for alert in Alert.objects.filter(message__in=inbound).order_by("pk"):
        raised.setdefault(alert.message_id, []).append(
            (str(alert.get_category_display()), alert.status)
        )
    for m in inbound:
        post = getattr(m, "post", None)
        if m.route == Message.Route.CHECKIN:
            kind = "checkin"
        elif m.route == Message.Route.KEYWORD:
            kind = "keyword"
        elif post is not None:
            kind = "post"
        else:
            kind = "private"
        entries.append(
            ThreadEntry(
                at=m.created_at,
                kind=kind,
                text=m.body,
                message=m,
                post_status=post.status if post is not None else "",
                alerts=tuple(raised.get(m.pk, ())),
            )
        )
    replies = (
        PrivateReply.objects.filter(enrollment=enrollment)
        .select_related("facilitator")
        .order_by("-created_at", "-pk")[:limit]
    )
    for r in replies:
        by = r.facilitator.get_username() if r.facilitator else ""
        entries.append(ThreadEntry(at=r.created_at, kind="reply", text=r.body, by=by))
    entries.sort(key=lambda e: e.at)
    return entries[-limit:]


def private_waiting_of(enrollment: Enrollment) -> QuerySet[Message]:
    return _private_waiting().filter(enrollment=enrollment).order_by("created_at", "pk")


def quick_replies() -> QuerySet[QuickReply]:
    return QuickReply.objects.filter(active=True)


# --- search ---------------------------------------------------------------------------------

# Bodies are encrypted at rest, so the database cannot search them: the newest messages of the
# cohorts this person may see are decrypted here and matched in Python. The bound keeps one
# search fast and limits how much private text a single request decrypts (decision 0026).
SEARCH_SCAN_LIMIT = 3000
SEARCH_RESULTS_LIMIT = 50


def _fold(text: str) -> str:
    """Lower case without accents: 'Mamá' and 'mama' match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class SearchResult:
    members: list[tuple[Enrollment, str]]
    messages: list[tuple[Message, str]]
    scanned: int
    truncated: bool  # the scan stopped at the bound: older messages were not searched


def search(user: Any, query: str, *, scan_limit: int = SEARCH_SCAN_LIMIT) -> SearchResult:
    """Members whose pseudonym matches and messages whose text matches, in this person's own
    cohorts only, newest first."""
    needle = _fold(query.strip())
    if not needle:
        return SearchResult(members=[], messages=[], scanned=0, truncated=False)
    cohort_ids = list(cohorts_for(user).values_list("pk", flat=True))
    names = pseudonyms_in(cohort_ids)
    by_id = Enrollment.objects.in_bulk([e for e, n in names.items() if needle in _fold(n)])
    members = sorted(((e, names[e.pk]) for e in by_id.values()), key=lambda p: p[1])
    candidates = list(
        Message.objects.filter(direction=Message.Direction.IN, enrollment__cohort_id__in=cohort_ids)
        .exclude(body="")
        .select_related("enrollment__cohort")
        .order_by("-created_at", "-pk")[: scan_limit + 1]
    )
    truncated = len(candidates) > scan_limit
    candidates = candidates[:scan_limit]
    found = [
        (m, names.get(m.enrollment_id or 0, "—")) for m in candidates if needle in _fold(m.body)
    ]
    return SearchResult(
        members=members[:SEARCH_RESULTS_LIMIT],
        messages=found[:SEARCH_RESULTS_LIMIT],
        scanned=len(candidates),
        truncated=truncated,
    )


# --- supervisor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FacilitatorLoad:
    facilitator: Any  # a user, or None for cohorts nobody facilitates
    cohorts: list[Cohort]
    open_alerts: int
    oldest_open_alert: dt.datetime | None
    waiting_private: int
    alert_minutes_median: float | None  # raised → handled
    reply_minutes_median: float | None  # his private message → the facilitator's reply
    alerts_handled: int
    replies: int
    alerts_raised: int = 0  # in the window asked for


def _median_minutes(deltas: list[dt.timedelta]) -> float | None:
    if not deltas:
        return None
    return statistics.median(d.total_seconds() / 60 for d in deltas)


def facilitator_loads(
    program: Program, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[FacilitatorLoad]:
    """Per facilitator of the program's cohorts: what is open now (alerts, private messages
    waiting) and, over the window [since, until), the alerts raised and the response times
    of the alerts raised and the private messages answered in it."""
    cohorts = list(program.cohorts.select_related("facilitator").order_by("start_date", "pk"))
    by_facilitator: dict[int | None, list[Cohort]] = {}
    for cohort in cohorts:
        by_facilitator.setdefault(cohort.facilitator_id, []).append(cohort)
    loads = []
    for mine in by_facilitator.values():
        alerts = Alert.objects.filter(cohort__in=mine)
        open_alerts = alerts.filter(status=Alert.Status.OPEN)
        replies = PrivateReply.objects.filter(
            enrollment__cohort__in=mine, in_reply_to__isnull=False
        ).select_related("in_reply_to")
        raised = alerts
        if since is not None:
            raised = raised.filter(created_at__gte=since)
            replies = replies.filter(created_at__gte=since)
        if until is not None:
            raised = raised.filter(created_at__lt=until)
            replies = replies.filter(created_at__lt=until)
        handled = raised.filter(status=Alert.Status.HANDLED, handled_at__isnull=False)
        reply_deltas = [r.created_at - r.in_reply_to.created_at for r in replies if r.in_reply_to]
        alert_deltas = [
            h - c for c, h in handled.values_list("created_at", "handled_at") if h is not None
        ]
        loads.append(
            FacilitatorLoad(
                facilitator=mine[0].facilitator,
                cohorts=mine,
                open_alerts=open_alerts.count(),
                oldest_open_alert=open_alerts.aggregate(m=Min("created_at"))["m"],
                waiting_private=_private_waiting().filter(enrollment__cohort__in=mine).count(),
                alert_minutes_median=_median_minutes(alert_deltas),
                reply_minutes_median=_median_minutes(reply_deltas),
                alerts_handled=len(alert_deltas),
                replies=len(reply_deltas),
                alerts_raised=raised.count(),
            )
        )
    return sorted(loads, key=lambda x: (-x.open_alerts, x.facilitator is not None))


def seen_by(user: Any, kind: str, ids: Iterable[int]) -> set[int]:
    """Of these inbox items of one kind, those `user` has already seen."""
    wanted = list(ids)
    if not wanted:
        return set()
    return set(
        InboxSeen.objects.filter(user=user, kind=kind, object_id__in=wanted).values_list(
            "object_id", flat=True
        )
    )
