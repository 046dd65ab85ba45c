"""Signed provider webhooks skip the middleware made for people.

A webhook POST is authenticated by its signature, carries no cookie, renders nothing and
answers with an empty body, so sessions, the language, CSRF, authentication, messages,
clickjacking headers, HTMX and static files have nothing to do for it; together they were a
measurable share of a request that must stay cheap (bench/inbound.py). This middleware goes
first and sends `/webhooks/` straight to its view. The host is still checked against
ALLOWED_HOSTS, as CommonMiddleware would."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import resolve

PREFIX = "/webhooks/"


class WebhookShortcut:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
        match = resolve(request.path_info)
        request.resolver_match = match
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        if not response.streaming and not response.has_header("Content-Length"):
            # As CommonMiddleware would: the server need not chunk or close to end the answer.
            response["Content-Length"] = str(len(response.content))
        return response
