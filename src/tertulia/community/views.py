"""The facilitator inbox. Views parse, call one service or selector, and render; lists refresh
themselves every few seconds through HTMX partials. Access is decided in selectors
(`access_*`, `cohorts_for`): a facilitator reaches only his cohorts, and anything else is a 404."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from tertulia.cohorts.models import Enrollment
from tertulia.community.facilitation import (
    ReplyRefused,
    group_post_send,
    held_post_approve,
    private_reply_send,
    relayed_post_retract,
    thread_open,
)
from tertulia.community.models import CommunityPost, InboxSeen
from tertulia.community.selectors import (
    Reach,
    access_cohort,
    access_enrollment,
    access_message,
    access_post,
    cohorts_for,
    facilitator_loads,
    feed_with_reach,
    members_of,
    messages_waiting_for,
    post_reach,
    posts_held_for,
    pseudonyms_in,
    quick_replies,
    search,
    seen_by,
    thread_of,
)
from tertulia.community.services import inbox_mark_seen, message_mark_handled
from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.programs.models import Program
from tertulia.safety.models import Alert
from tertulia.safety.services import (
    alert_can_handle,
    alert_resolve,
    alerts_open_for_facilitator,
    is_supervisor,
)


def _lists(user: Any) -> tuple[list[Alert], list[CommunityPost], list[Message]]:
    return (
        list(alerts_open_for_facilitator(user)[:100]),
        list(posts_held_for(user)[:100]),
        list(messages_waiting_for(user)[:200]),
    )


SEEN = InboxSeen.Kind


def _context(request: HttpRequest, notice: object = "") -> dict[str, object]:
    alerts, held, waiting = _lists(request.user)
    cohort_ids = {a.cohort_id for a in alerts} | {
        m.enrollment.cohort_id for m in waiting if m.enrollment
    }
    names = pseudonyms_in(c for c in cohort_ids if c)
    for alert in alerts:
        alert.pseudonym = names.get(alert.enrollment_id or 0, "—")  # type: ignore[attr-defined]
    for message in waiting:
        message.pseudonym = names.get(message.enrollment_id or 0, "—")  # type: ignore[attr-defined]
    # Unread is his own: what he has not seen yet (InboxSeen), whoever else has.
    unread = 0
    for kind, items in ((SEEN.ALERT, alerts), (SEEN.POST, held), (SEEN.MESSAGE, waiting)):
        seen = seen_by(request.user, kind, (i.pk for i in items))
        for item in items:
            item.unseen = item.pk not in seen  # type: ignore[union-attr]
            unread += item.unseen  # type: ignore[union-attr]
    return {
        "alerts": alerts,
        "held": held,
        "waiting": waiting,
        "attention": len(alerts) + len(held) + len(waiting),
        "unread": unread,
        "rendered_at": clock.now().isoformat(),
        "notice": notice,  # what his last action did, said once
    }


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    context["cohorts"] = list(cohorts_for(request.user))
    context["supervisor"] = is_supervisor(request.user)
    return render(request, "community/inbox.html", context)


@login_required
def inbox_items(request: HttpRequest) -> HttpResponse:
    return render(request, "community/_items.html", _context(request))


@login_required
@require_POST
def inbox_seen_view(request: HttpRequest) -> HttpResponse:
    """Mark what his inbox showed as seen (not what arrived after it was drawn)."""
    try:
        upto = dt.datetime.fromisoformat(request.POST.get("upto", ""))
    except ValueError:
        upto = clock.now()
    alerts, held, waiting = _lists(request.user)
    items = [(SEEN.ALERT, a.pk) for a in alerts if a.created_at <= upto]
    items += [(SEEN.POST, p.pk) for p in held if p.created_at <= upto]
    items += [(SEEN.MESSAGE, m.pk) for m in waiting if m.created_at <= upto]
    inbox_mark_seen(user=request.user, items=items)
    return render(request, "community/_items.html", _context(request))


@login_required
@require_POST
def alert_resolve_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = Alert.objects.select_related("cohort").filter(pk=alert_id).first()
    if alert is None or not alert_can_handle(alert, request.user):
        raise Http404
    resolved = alert_resolve(alert, request.user, note=request.POST.get("note", "")[:2000])
    notice = _("Alert resolved. The message stays held: it is never relayed.")
    if resolved.handled_by_id != request.user.pk:
        notice = _("Someone else resolved this alert first; your note was not saved.")
    return render(request, "community/_items.html", _context(request, notice))


@login_required
@require_POST
def message_handled_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    message_mark_handled(message=message, user=request.user)
    return render(request, "community/_items.html", _context(request, _("Marked handled.")))


@login_required
@require_POST
def post_approve_view(request: HttpRequest, post_id: int) -> HttpResponse:
    post = access_post(request.user, post_id)
    notice: object
    if held_post_approve(post=post, user=request.user):
        reach = post_reach([post.pk]).get(post.pk, Reach())
        now_part = ngettext("%(n)d man gets it now", "%(n)d men get it now", reach.live) % {
            "n": reach.live
        }
        digest_part = ngettext(
            "%(n)d in his next digest", "%(n)d in their next digest", reach.digest
        ) % {"n": reach.digest}
        notice = _("Relayed: %(now)s, %(digest)s.") % {"now": now_part, "digest": digest_part}
    else:
        post.refresh_from_db(fields=["status"])  # held still: an alert holds it
        notice = (
            _("Not relayed: a safety alert holds this message, and it is never relayed.")
            if post.status == CommunityPost.Status.HELD
            else _("Someone else already handled this post.")
        )
    return render(request, "community/_items.html", _context(request, notice))


def _after_send(
    request: HttpRequest, template: str, context: dict[str, object], error: str
) -> HttpResponse:
    """HTMX swaps only 2xx answers, so a refused reply is a 200 with its error for HTMX (the
    form keeps his text) and a 400 otherwise; a sent one tells the form to clear itself."""
    if error:
        return render(request, template, context, status=200 if request.htmx else 400)  # type: ignore[attr-defined]
    response = render(request, template, context)
    response["HX-Trigger"] = "reply-sent"
    return response


# --- a cohort: its feed, its members, a post to the group -----------------------------------


def _cohort_context(request: HttpRequest, cohort_id: int) -> dict[str, object]:
    cohort = access_cohort(request.user, cohort_id)
    return {"cohort": cohort, "feed": feed_with_reach(cohort), "members": members_of(cohort)}


@login_required
def cohort_view(request: HttpRequest, cohort_id: int) -> HttpResponse:
    context = _cohort_context(request, cohort_id)
    context["quick_replies"] = list(quick_replies())
    return render(request, "community/cohort.html", context)


@login_required
def cohort_items(request: HttpRequest, cohort_id: int) -> HttpResponse:
    return render(request, "community/_cohort_items.html", _cohort_context(request, cohort_id))


@login_required
@require_POST
def group_post_view(request: HttpRequest, cohort_id: int) -> HttpResponse:
    cohort = access_cohort(request.user, cohort_id)
    error = ""
    try:
        group_post_send(cohort=cohort, user=request.user, text=request.POST.get("text", ""))
    except ReplyRefused as exc:
        error = str(exc)
    context = _cohort_context(request, cohort_id)
    context["error"] = error
    return _after_send(request, "community/_cohort_items.html", context, error)


@login_required
@require_POST
def post_retract_view(request: HttpRequest, post_id: int) -> HttpResponse:
    post = access_post(request.user, post_id)
    relayed_post_retract(post=post, user=request.user)
    if request.POST.get("from") == "inbox":  # a held post turned down from the inbox
        return render(request, "community/_items.html", _context(request))
    return render(request, "community/_cohort_items.html", _cohort_context(request, post.cohort_id))


# --- one man's thread -----------------------------------------------------------------------


def _thread_context(enrollment: Enrollment) -> dict[str, object]:
    names = pseudonyms_in([enrollment.cohort_id])
    return {
        "enrollment": enrollment,
        "pseudonym": names.get(enrollment.pk, "—"),
        "entries": thread_of(enrollment),
    }


def _items_of(user: Any, enrollment: Enrollment) -> list[tuple[InboxSeen.Kind, int]]:
    """The inbox items about one man: opening his thread is seeing them."""
    alerts, held, waiting = _lists(user)
    return (
        [(SEEN.ALERT, a.pk) for a in alerts if a.enrollment_id == enrollment.pk]
        + [(SEEN.POST, p.pk) for p in held if p.author and p.author.enrollment_id == enrollment.pk]
        + [(SEEN.MESSAGE, m.pk) for m in waiting if m.enrollment_id == enrollment.pk]
    )


@login_required
def thread_view(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    enrollment = access_enrollment(request.user, enrollment_id)
    thread_open(enrollment=enrollment, user=request.user)
    inbox_mark_seen(user=request.user, items=_items_of(request.user, enrollment))
    context = _thread_context(enrollment)
    context["quick_replies"] = list(quick_replies())
    return render(request, "community/thread.html", context)


@login_required
def thread_items(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    enrollment = access_enrollment(request.user, enrollment_id)
    return render(request, "community/_thread_items.html", _thread_context(enrollment))


@login_required
@require_POST
def private_reply_view(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    enrollment = access_enrollment(request.user, enrollment_id)
    text = request.POST.get("text", "")
    error = ""
    try:
        private_reply_send(enrollment=enrollment, user=request.user, text=text)
    except ReplyRefused as exc:
        error = str(exc)
    context = _thread_context(enrollment)
    context["error"] = error
    return _after_send(request, "community/_thread_items.html", context, error)


# --- search and the supervisor's view -------------------------------------------------------


@login_required
def search_view(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    result = search(request.user, query) if query.strip() else None
    return render(request, "community/search.html", {"q": query, "result": result})


@login_required
def supervisor_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    if not is_supervisor(request.user):
        raise PermissionDenied
    programs = list(Program.objects.order_by("name"))
    if slug is None:
        if len(programs) == 1:
            target = reverse("community:supervisor_program", kwargs={"slug": programs[0].slug})
            query = request.GET.urlencode()
            return redirect(f"{target}?{query}" if query else target)
        return render(request, "community/supervisor.html", {"programs": programs})
    program = get_object_or_404(Program, slug=slug)
    window = WindowForm(request.GET or None)
    start, end = window.dates()
    zone = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return render(
        request,
        "community/supervisor.html",
        {
            "programs": programs,
            "program": program,
            "window": window,
            "start": start,
            "end": end,
            "loads": facilitator_loads(program, since=since, until=until),
        },
    )


class WindowForm(forms.Form):
    """The supervisor's date window: both days included; the last 7 days unless asked."""

    DEFAULT_DAYS = 7

    start = forms.DateField(label=_("From"), required=False)
    end = forms.DateField(label=_("To"), required=False)

    def dates(self) -> tuple[dt.date, dt.date]:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=self.DEFAULT_DAYS - 1)
        return (end, start) if start > end else (start, end)
