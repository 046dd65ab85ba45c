"""The facilitator inbox. Views parse, call one service or selector, and render; the list
refreshes itself every few seconds through an HTMX partial."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from tertulia.community.selectors import (
    access_message,
    access_post,
    messages_waiting_for,
    posts_held_for,
)
from tertulia.community.services import message_mark_handled, post_approve
from tertulia.safety.models import Alert
from tertulia.safety.services import alert_can_handle, alert_resolve, alerts_open_for_facilitator


def _context(request: HttpRequest) -> dict[str, object]:
    alerts = list(alerts_open_for_facilitator(request.user)[:100])
    held = list(posts_held_for(request.user)[:100])
    waiting = list(messages_waiting_for(request.user)[:200])
    return {
        "alerts": alerts,
        "held": held,
        "waiting": waiting,
        "unread": len(alerts) + len(held) + len(waiting),
    }


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "community/inbox.html", _context(request))


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
    post_approve(post=access_post(request.user, post_id), user=request.user)
    return render(request, "community/_items.html", _context(request))
