"""The WSGI fast path for Cloud API webhook POSTs.

Meta posts a webhook for every message and for every status of every message we send (sent,
delivered, read): during a community burst these POSTs outnumber everything else the web app
serves, and each one only needs its signature checked and its body stored. Django's request
cycle (request objects, URL resolution, signals, the response object) cost as much CPU as
that work itself (bench/inbound.py, bench/relay.py; decision 0101). So a POST to
`/webhooks/whatsapp/<name>/` from an allowed host, with a Content-Length within Django's
upload limit, goes straight to `webhook_receive`, the function the Django view uses too.
Everything else, including the GET handshake and any request this path is unsure about, goes
to Django unchanged, which answers it as before (a host not allowed gets Django's 400)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import connection
from django.http.request import split_domain_port, validate_host

from .views import webhook_receive

logger = logging.getLogger(__name__)

# Django's <slug:name> in whatsapp/urls.py.
ROUTE = re.compile(r"/webhooks/whatsapp/([-a-zA-Z0-9_]+)/\Z")
SIGNATURE = "HTTP_X_HUB_SIGNATURE_256"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _host_allowed(environ: dict[str, Any]) -> bool:
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return False  # Django's own rules for a forwarded host
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _length(environ: dict[str, Any]) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None  # chunked or missing: Django reads it
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return length if 0 <= length and (limit is None or length <= limit) else None


def webhook_fast_path(app: WSGIApp) -> WSGIApp:
    """Wrap Django's WSGI `app` so that plain webhook POSTs skip its request cycle."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = ROUTE.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        length = _length(environ)
        if length is None or not _host_allowed(environ):
            return app(environ, start_response)
        # What Django does around each request: drop a connection that broke or aged.
        connection.close_if_unusable_or_obsolete()
        try:
            body = environ["wsgi.input"].read(length)
            status = webhook_receive(match.group(1), body, environ.get(SIGNATURE))
        except Exception:
            # Never the body: it holds numbers and texts. Meta retries what was not a 200.
            logger.exception("webhook %s: POST could not be stored", match.group(1))
            status = 500
        finally:
            connection.close_if_unusable_or_obsolete()
        start_response(f"{status} {HTTPStatus(status).phrase}", list(HEADERS))
        return [b""]

    return application
