"""The WSGI fast path: plain webhook POSTs are checked and stored without Django's request
cycle, with the same answers as the view; everything else reaches Django unchanged."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection

from tertulia.messaging.channels.whatsapp import views
from tertulia.messaging.channels.whatsapp.signature import sign
from tertulia.messaging.channels.whatsapp.wsgi import webhook_fast_path
from tertulia.messaging.models import WebhookEvent

from .conftest import CHANNEL, SECRET, URL, envelope, text_message

pytestmark = pytest.mark.django_db(transaction=True)


class Spy:
    """Django's application, counting the requests that reach it."""

    def __init__(self) -> None:
        self.django = get_wsgi_application()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.django(environ, start_response)


def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    signature: str | None = None,
    host: str = "127.0.0.1:8000",
    query: str = "",
    length: str | None = None,
) -> tuple[int, bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)) if length is None else length,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    if signature is not None:
        environ["HTTP_X_HUB_SIGNATURE_256"] = signature
    answered: list[str] = []
    content = b"".join(app(environ, lambda status, headers: answered.append(status)))
    return int(answered[0].split()[0]), content


@pytest.fixture
def app() -> tuple[Any, Spy]:
    spy = Spy()
    return webhook_fast_path(spy), spy


def test_a_signed_post_is_stored_without_django(app, make_config) -> None:  # type: ignore[no-untyped-def]
    fast, spy = app
    make_config()
    inbound = envelope(messages=[text_message("51987000001", "Hola grupo", "wamid.F1")])
    statuses = envelope(statuses=[{"id": "wamid.OUT", "status": "read", "timestamp": "1772496000"}])
    assert call(fast, "POST", URL, inbound, signature=sign(inbound, SECRET))[0] == 200
    assert call(fast, "POST", URL, statuses, signature=sign(statuses, SECRET))[0] == 200
    assert spy.calls == 0
    stored = list(WebhookEvent.objects.order_by("id"))
    assert [e.body for e in stored] == [inbound.decode(), statuses.decode()]
    assert [e.has_messages for e in stored] == [True, False]
    assert {e.channel for e in stored} == {CHANNEL}


def test_the_same_refusals_as_the_view(app, make_config) -> None:  # type: ignore[no-untyped-def]
    fast, spy = app
    make_config()
    body = envelope(messages=[text_message("51987000001", "Hola", "wamid.F2")])
    assert call(fast, "POST", URL, body)[0] == 401
    assert call(fast, "POST", URL, body, signature=sign(body, "not-the-secret"))[0] == 403
    assert call(fast, "POST", URL, body, signature="sha256=" + "0" * 64)[0] == 403
    other = "/webhooks/whatsapp/nobody/"
    assert call(fast, "POST", other, body, signature=sign(body, SECRET))[0] == 404
    assert spy.calls == 0
    assert not WebhookEvent.objects.exists()


def test_what_the_fast_path_does_not_take_reaches_django(app, make_config) -> None:  # type: ignore[no-untyped-def]
    fast, spy = app
    make_config()
    body = envelope(messages=[text_message("51987000001", "Hola", "wamid.F3")])
    signed = sign(body, SECRET)
    query = "hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=42"
    assert call(fast, "GET", URL, query=query) == (200, b"42")
    # A host Django does not serve: its DisallowedHost answer, nothing stored.
    assert call(fast, "POST", URL, body, signature=signed, host="evil.example")[0] == 400
    # Without a length Django decides, as it always did (it reads no body: the signature
    # does not match it).
    assert call(fast, "POST", URL, body, signature=signed, length="")[0] == 403
    assert call(fast, "GET", "/no-such-page/")[0] == 404
    assert spy.calls == 4
    assert not WebhookEvent.objects.exists()


def test_a_body_over_djangos_limit_is_refused_by_django(app, make_config, settings) -> None:  # type: ignore[no-untyped-def]
    fast, spy = app
    make_config()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = envelope(messages=[text_message("51987000001", "x" * 200, "wamid.F4")])
    assert call(fast, "POST", URL, body, signature=sign(body, SECRET))[0] == 400
    assert spy.calls == 1
    assert not WebhookEvent.objects.exists()


def test_a_store_that_fails_answers_500_logs_no_body_and_the_next_post_is_stored(
    app, make_config, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    fast, _ = app
    make_config()
    body = envelope(messages=[text_message("51987000001", "Mi secreto", "wamid.F5")])
    signed = sign(body, SECRET)

    def broken(**kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    real = views.webhook_event_store
    monkeypatch.setattr(views, "webhook_event_store", broken)
    with caplog.at_level(logging.ERROR):
        assert call(fast, "POST", URL, body, signature=signed)[0] == 500
    assert "could not be stored" in caplog.text
    assert "Mi secreto" not in caplog.text and "51987000001" not in caplog.text
    monkeypatch.setattr(views, "webhook_event_store", real)
    # Meta's retry of the same POST is stored: the failed statement left nothing behind.
    assert call(fast, "POST", URL, body, signature=signed)[0] == 200
    assert WebhookEvent.objects.get().body == body.decode()


def test_the_projects_wsgi_application_takes_the_fast_path() -> None:
    from tertulia import wsgi

    assert wsgi.application is not wsgi.django_application
    assert wsgi.application.__qualname__.startswith("webhook_fast_path")
