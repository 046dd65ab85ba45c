"""The facilitator inbox. Views parse, call one service or selector, and render; lists refresh
themselves every few seconds through HTMX partials. Access is decided in selectors
(`access_*`, `cohorts_for`): a facilitator reaches only his cohorts, and anything else is a 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
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
from tertulia.community.selectors import (
    access_cohort,
    access_enrollment,
    access_message,
    access_post,
    cohort_feed,
    cohorts_for,
    facilitator_loads,
    members_of,
    messages_waiting_for,
    posts_held_for,
    pseudonyms_in,
    quick_replies,
    search,
    thread_of,
)
from tertulia.community.services import message_mark_handled
from tertulia.programs.models import Program
from tertulia.safety.models import Alert
from tertulia.safety.services import (
    alert_can_handle,
    alert_resolve,
    alerts_open_for_facilitator,
    is_supervisor,
)


def _context(request: HttpRequest) -> dict[str, object]:
    alerts = list(alerts_open_for_facilitator(request.user)[:100])
    held = list(posts_held_for(request.user)[:100])
    waiting = list(messages_waiting_for(request.user)[:200])
    cohort_ids = {a.cohort_id for a in alerts} | {
        m.enrollment.cohort_id for m in waiting if m.enrollment
    }
    names = pseudonyms_in(c for c in cohort_ids if c)
    for alert in alerts:
        alert.pseudonym = names.get(alert.enrollment_id or 0, "—")  # type: ignore[attr-defined]
    for message in waiting:
        message.pseudonym = names.get(message.enrollment_id or 0, "—")  # type: ignore[attr-defined]
    return {
        "alerts": alerts,
        "held": held,
        "waiting": waiting,
        "unread": len(alerts) + len(held) + len(waiting),
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
def alert_resolve_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = Alert.objects.select_related("cohort").filter(pk=alert_id).first()
    if alert is None or not alert_can_handle(alert, request.user):
        raise Http404
    alert_resolve(alert, request.user, note=request.POST.get("note", "")[:2000])
    return render(request, "community/_items.html", _context(request))


@login_required
@require_POST
def message_handled_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    message_mark_handled(message=message, user=request.user)
    return render(request, "community/_items.html", _context(request))


@login_required
@require_POST
def post_approve_view(request: HttpRequest, post_id: int) -> HttpResponse:
    held_post_approve(post=access_post(request.user, post_id), user=request.user)
    return render(request, "community/_items.html", _context(request))


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
    return {"cohort": cohort, "feed": cohort_feed(cohort), "members": members_of(cohort)}


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


@login_required
def thread_view(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    enrollment = access_enrollment(request.user, enrollment_id)
    thread_open(enrollment=enrollment, user=request.user)
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
            return redirect("community:supervisor_program", slug=programs[0].slug)
        return render(request, "community/supervisor.html", {"programs": programs})
    program = get_object_or_404(Program, slug=slug)
    return render(
        request,
        "community/supervisor.html",
        {"programs": programs, "program": program, "loads": facilitator_loads(program)},
    )
