"""A thin client for the two Cloud API endpoints we use, and pure payload builders.

    POST /{version}/{phone-number-id}/messages  -> {"messaging_product": "whatsapp",
        "contacts": [{"input": ..., "wa_id": ...}], "messages": [{"id": "wamid..."}]}
    POST /{version}/{phone-number-id}/media     (multipart: file, type, messaging_product)
        -> {"id": "<media id>"}

Failures raise `CloudAPIError`, whose `action` comes from the error table (errors.py) and whose
`maybe_accepted` says whether Meta may have accepted the message anyway (a timeout or a dropped
connection after the request was written). Such a request is never re-sent blindly: the sender
reconciles through the status webhook, which echoes our `biz_opaque_callback_data` reference.

Nothing here logs tokens, phone numbers or message bodies; log records carry the phone-number
id of our own business number, error codes and HTTP statuses only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import logging
import math
import mimetypes
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yarl

from .errors import Action, action_for

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"

# Cloud API limits (characters), checked here so a bad payload fails before it costs a request.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
INTERACTIVE_BODY_LIMIT = 1024
HEADER_TEXT_LIMIT = 60
FOOTER_LIMIT = 60
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10
LIST_SECTION_TITLE_LIMIT = 24
LIST_ROW_TITLE_LIMIT = 24
LIST_ROW_ID_LIMIT = 200
LIST_ROW_DESCRIPTION_LIMIT = 72
REFERENCE_LIMIT = 512
MEDIA_KINDS = ("audio", "image", "video", "document", "sticker")
CAPTIONED_KINDS = ("image", "video", "document")

# A business-scoped user id (BSUID) looks like "PE.1502576394655843" or "US.ENT.1181..."; it is
# sent in `recipient` instead of `to` when we have no phone number for the person.
_BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]+$")


class PayloadError(ValueError):
    """A payload that the Cloud API would reject (limits, missing fields). Never sent."""


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    wa_id: str | None = None
    input: str | None = None
    # "accepted", or "held_for_quality_assessment" for marketing templates under review
    message_status: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    media_id: str
    url: str | None
    mime_type: str | None
    sha256: str | None
    file_size: int | None


class CloudAPIError(Exception):
    """A send that did not (certainly) succeed.

    `code`/`subcode` are the Graph error's, None for transport failures. `action` is what the
    sender should do (errors.Action). `maybe_accepted` is True when Meta may have accepted the
    message although we got no answer: never re-send those as a new message without checking.
    """

    def __init__(
        self,
        *,
        code: int | None,
        title: str,
        http_status: int | None,
        action: Action,
        maybe_accepted: bool = False,
        subcode: int | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.code = code
        self.subcode = subcode
        self.title = title
        self.details = details
        self.http_status = http_status
        self.action = action
        self.maybe_accepted = maybe_accepted
        self.fbtrace_id = fbtrace_id
        self.error_type = error_type
        super().__init__(str(self))

    def __str__(self) -> str:
        # Titles and details come from Meta and describe the error, not the message content.
        parts = [f"code={self.code}" if self.code is not None else "transport error"]
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        parts.append(f"action={self.action.value}")
        if self.maybe_accepted:
            parts.append("maybe_accepted")
        return f"{self.title} ({', '.join(parts)})"

    @property
    def retryable(self) -> bool:
        return self.action is Action.RETRY


class MissedSlot(CloudAPIError):
    """Not sent: the batch woke too late for the moment the rate limiter gave this request.
    Sending it anyway would bunch it with requests sent on time and break the limit."""

    def __init__(self) -> None:
        super().__init__(
            code=None,
            title="Not sent: missed its moment in the rate limit",
            http_status=None,
            action=Action.RETRY,
        )


# -- payload builders (pure functions) ---------------------------------------------------------


def _check_length(name: str, value: str, limit: int, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise PayloadError(f"{name} must be a string")
    if not value and not allow_empty:
        raise PayloadError(f"{name} must not be empty")
    if len(value) > limit:
        raise PayloadError(f"{name} is {len(value)} characters; the limit is {limit}")


def _base(to: str, kind: str, *, reference: str | None, reply_to: str | None) -> dict[str, Any]:
    if not to or not isinstance(to, str):
        raise PayloadError("recipient must not be empty")
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if _BSUID.match(to):
        payload["recipient"] = to
    else:
        payload["to"] = to
    payload["type"] = kind
    if reference is not None:
        _check_length("reference", reference, REFERENCE_LIMIT)
        payload["biz_opaque_callback_data"] = reference
    if reply_to is not None:
        payload["context"] = {"message_id": reply_to}
    return payload


_SENTENCE_END = re.compile(r"[.!?…;:]+[\"'»”’)\]]*\s+")


def split_text(body: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split `body` into parts of at most `limit` characters, at the best boundary available:
    a paragraph break, else a sentence end, else a line break, else a space; a word longer
    than the limit is cut. Whitespace at the cut is dropped; nothing else is lost."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = body.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]  # one extra, so a boundary right at the limit counts
        cut = _best_cut(window, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _best_cut(window: str, limit: int) -> int:
    # Do not accept a boundary in the first fifth: a tiny first part reads badly.
    floor = limit // 5
    paragraph = window.rfind("\n\n", floor)
    if paragraph != -1:
        return paragraph
    best = -1
    for match in _SENTENCE_END.finditer(window):
        if match.start() >= floor and match.end() <= limit + 1:
            best = match.end()
    if best != -1:
        return min(best, limit)
    for sep in ("\n", " "):
        index = window.rfind(sep, floor)
        if index != -1:
            return index
    return limit


def text_payload(
    to: str,
    body: str,
    *,
    preview_url: bool = False,
    reference: str | None = None,
    reply_to: str | None = None,
) -> list[dict[str, Any]]:
    """Text message(s): one payload per part of `body` split at sentence boundaries.

    With several parts, each gets its own reference (`<reference>.<n>`, n from 1) so that each
    can be tracked and deduplicated; only the first part carries the reply context."""
    if not isinstance(body, str) or not body.strip():
        raise PayloadError("text body must not be empty")
    parts = split_text(body)
    payloads = []
    for index, part in enumerate(parts):
        ref = reference
        if reference is not None and len(parts) > 1:
            ref = f"{reference}.{index + 1}"
        payload = _base(to, "text", reference=ref, reply_to=reply_to if index == 0 else None)
        payload["text"] = {"preview_url": preview_url, "body": part}
        payloads.append(payload)
    return payloads


def media_payload(
    to: str,
    kind: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    reference: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """Audio, image, video, document or sticker, by uploaded media id (preferred) or link."""
    if kind not in MEDIA_KINDS:
        raise PayloadError(f"media kind must be one of {', '.join(MEDIA_KINDS)}")
    if (media_id is None) == (link is None):
        raise PayloadError("give exactly one of media_id and link")
    media: dict[str, Any] = {"id": media_id} if media_id is not None else {"link": link}
    if caption is not None:
        if kind not in CAPTIONED_KINDS:
            raise PayloadError(f"{kind} messages cannot have a caption")
        _check_length("caption", caption, CAPTION_LIMIT)
        media["caption"] = caption
    if filename is not None:
        if kind != "document":
            raise PayloadError("only documents have a filename")
        media["filename"] = filename
    payload = _base(to, kind, reference=reference, reply_to=reply_to)
    payload[kind] = media
    return payload


def _header_footer(interactive: dict[str, Any], header: str | None, footer: str | None) -> None:
    if header is not None:
        _check_length("header", header, HEADER_TEXT_LIMIT)
        interactive["header"] = {"type": "text", "text": header}
    if footer is not None:
        _check_length("footer", footer, FOOTER_LIMIT)
        interactive["footer"] = {"text": footer}


def buttons_payload(
    to: str,
    body: str,
    buttons: Sequence[tuple[str, str]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reference: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """Interactive reply buttons (check-ins): 1-3 buttons of (id, title), title ≤ 20 chars."""
    _check_length("body", body, INTERACTIVE_BODY_LIMIT)
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise PayloadError(f"between 1 and {MAX_BUTTONS} buttons are allowed, got {len(buttons)}")
    seen_ids: set[str] = set()
    seen_titles: set[str] = set()
    rendered = []
    for index, (button_id, title) in enumerate(buttons):
        _check_length(f"button {index} id", button_id, BUTTON_ID_LIMIT)
        _check_length(f"button {index} title", title, BUTTON_TITLE_LIMIT)
        if button_id in seen_ids:
            raise PayloadError(f"button ids must be unique: {button_id!r} repeats")
        if title in seen_titles:
            raise PayloadError(f"button titles must be unique: button {index} repeats one")
        seen_ids.add(button_id)
        seen_titles.add(title)
        rendered.append({"type": "reply", "reply": {"id": button_id, "title": title}})
    interactive: dict[str, Any] = {"type": "button", "body": {"text": body}}
    _header_footer(interactive, header, footer)
    interactive["action"] = {"buttons": rendered}
    payload = _base(to, "interactive", reference=reference, reply_to=reply_to)
    payload["interactive"] = interactive
    return payload


ListRow = tuple[str, str] | tuple[str, str, str | None]


def list_payload(
    to: str,
    body: str,
    button: str,
    sections: Sequence[tuple[str | None, Sequence[ListRow]]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reference: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """Interactive list: `sections` are (title, rows) with rows (id, title[, description]);
    at most 10 sections and 10 rows in all; a title is required when there are several."""
    _check_length("body", body, INTERACTIVE_BODY_LIMIT)
    _check_length("list button", button, LIST_BUTTON_LIMIT)
    if not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        raise PayloadError(f"between 1 and {MAX_LIST_SECTIONS} sections are allowed")
    total_rows = sum(len(rows) for _, rows in sections)
    if not 1 <= total_rows <= MAX_LIST_ROWS:
        raise PayloadError(f"between 1 and {MAX_LIST_ROWS} rows are allowed, got {total_rows}")
    seen: set[str] = set()
    rendered_sections = []
    for s_index, (title, rows) in enumerate(sections):
        section: dict[str, Any] = {}
        if title is not None:
            _check_length(f"section {s_index} title", title, LIST_SECTION_TITLE_LIMIT)
            section["title"] = title
        elif len(sections) > 1:
            raise PayloadError("every section needs a title when there are several")
        if not rows:
            raise PayloadError(f"section {s_index} has no rows")
        rendered_rows = []
        for row in rows:
            row_id, row_title = row[0], row[1]
            description = row[2] if len(row) > 2 else None
            _check_length("row id", row_id, LIST_ROW_ID_LIMIT)
            _check_length("row title", row_title, LIST_ROW_TITLE_LIMIT)
            if row_id in seen:
                raise PayloadError(f"row ids must be unique: {row_id!r} repeats")
            seen.add(row_id)
            rendered: dict[str, Any] = {"id": row_id, "title": row_title}
            if description is not None:
                _check_length("row description", description, LIST_ROW_DESCRIPTION_LIMIT)
                rendered["description"] = description
            rendered_rows.append(rendered)
        section["rows"] = rendered_rows
        rendered_sections.append(section)
    interactive: dict[str, Any] = {"type": "list", "body": {"text": body}}
    _header_footer(interactive, header, footer)
    interactive["action"] = {"button": button, "sections": rendered_sections}
    payload = _base(to, "interactive", reference=reference, reply_to=reply_to)
    payload["interactive"] = interactive
    return payload


def template_payload(
    to: str,
    name: str,
    language: str,
    params: Sequence[str] | Mapping[str, str] = (),
    *,
    header: Mapping[str, Any] | None = None,
    button_payloads: Sequence[str] = (),
    components: Sequence[Mapping[str, Any]] | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """A template message. `params` fill the body: a sequence for positional ({{1}}, {{2}})
    parameters, a mapping for named ones. `header` is one header parameter, e.g.
    ``{"type": "video", "video": {"id": ...}}``. `button_payloads` set the payloads of the
    template's quick-reply buttons, in order. `components` replaces all of that when given."""
    _check_length("template name", name, 512)
    _check_length("template language", language, 15)
    if components is None:
        built: list[dict[str, Any]] = []
        if header is not None:
            built.append({"type": "header", "parameters": [dict(header)]})
        if isinstance(params, Mapping):
            body_params = [
                {"type": "text", "parameter_name": key, "text": str(value)}
                for key, value in params.items()
            ]
        else:
            body_params = [{"type": "text", "text": str(value)} for value in params]
        if body_params:
            built.append({"type": "body", "parameters": body_params})
        for index, button_payload in enumerate(button_payloads):
            built.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": str(index),
                    "parameters": [{"type": "payload", "payload": button_payload}],
                }
            )
        components = built
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = [dict(c) for c in components]
    payload = _base(to, "template", reference=reference, reply_to=None)
    payload["template"] = template
    return payload


def reply_context(payload: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """A copy of `payload` that quotes the message `message_id` (a reply in the chat)."""
    if not message_id:
        raise PayloadError("message_id must not be empty")
    result = copy.deepcopy(dict(payload))
    result["context"] = {"message_id": message_id}
    return result


# -- responses ----------------------------------------------------------------------------------

_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


def error_from_response(http_status: int, content: bytes) -> CloudAPIError:
    """The CloudAPIError for a non-2xx response, from Meta's Graph error envelope if present."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        document = None
    error: Any = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        # No Graph envelope: an intermediary (load balancer, gateway) answered. A 502/504 from a
        # gateway may hide a request Meta did accept, so it is not safe to resend blindly.
        return CloudAPIError(
            code=None,
            title=f"HTTP {http_status} without a Graph error body",
            http_status=http_status,
            action=action_for(None, http_status=http_status),
            maybe_accepted=http_status in (502, 504),
        )
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if code is None and isinstance(error.get("code"), str) and error["code"].isdigit():
        code = int(error["code"])
    subcode = error.get("error_subcode")
    subcode = subcode if isinstance(subcode, int) and not isinstance(subcode, bool) else None
    message: str = error["message"] if isinstance(error.get("message"), str) else ""
    error_data: dict[str, Any] = (
        error["error_data"] if isinstance(error.get("error_data"), dict) else {}
    )
    details = error_data.get("details") if isinstance(error_data.get("details"), str) else None
    return CloudAPIError(
        code=code,
        subcode=subcode,
        title=_CODE_PREFIX.sub("", message) or f"HTTP {http_status}",
        details=details,
        http_status=http_status,
        action=action_for(code, http_status=http_status),
        # Meta answered with an error: it did not accept the message.
        maybe_accepted=False,
        fbtrace_id=error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
        error_type=error.get("type") if isinstance(error.get("type"), str) else None,
    )


def result_from_response(http_status: int, content: bytes) -> SendResult:
    """The SendResult of a 2xx send response; a malformed one raises CloudAPIError."""
    try:
        # Decoded first: json.loads on bytes guesses their encoding on every response.
        document = json.loads(content.decode("utf-8"))
        message = document["messages"][0]
        provider_id = message["id"]
        if not isinstance(provider_id, str) or not provider_id:
            raise TypeError("id")
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        # A 2xx we cannot read: Meta probably accepted it, so do not resend blindly.
        raise CloudAPIError(
            code=None,
            title="Unreadable success response",
            http_status=http_status,
            action=Action.FAIL_VISIBLY,
            maybe_accepted=True,
        ) from None
    contacts = document.get("contacts") if isinstance(document.get("contacts"), list) else []
    contact = contacts[0] if contacts and isinstance(contacts[0], dict) else {}
    return SendResult(
        provider_id=provider_id,
        wa_id=contact.get("wa_id") if isinstance(contact.get("wa_id"), str) else None,
        input=contact.get("input") if isinstance(contact.get("input"), str) else None,
        message_status=message.get("message_status")
        if isinstance(message.get("message_status"), str)
        else None,
    )


def _transport_error(exc: BaseException, *, maybe_accepted: bool) -> CloudAPIError:
    return CloudAPIError(
        code=None,
        title=f"{type(exc).__name__} talking to the Cloud API",
        http_status=None,
        action=action_for(None, transport_error=True),
        maybe_accepted=maybe_accepted,
    )


def _httpx_maybe_accepted(exc: httpx.TransportError) -> bool:
    # Failures before any byte of the request left are safe to resend; anything later may have
    # reached Meta, which could have accepted the message before the connection died.
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


# -- the clients ----------------------------------------------------------------------------------


class _Endpoints:
    def __init__(self, base_url: str, api_version: str, phone_number_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.phone_number_id = phone_number_id
        self.messages_url = f"{self.base_url}/{self.api_version}/{phone_number_id}/messages"
        self.media_url = f"{self.base_url}/{self.api_version}/{phone_number_id}/media"

    def media_info_url(self, media_id: str) -> str:
        return f"{self.base_url}/{self.api_version}/{media_id}"


def _media_info(media_id: str, content: bytes) -> MediaInfo:
    document = json.loads(content)
    return MediaInfo(
        media_id=str(document.get("id", media_id)),
        url=document.get("url"),
        mime_type=document.get("mime_type"),
        sha256=document.get("sha256"),
        file_size=int(document["file_size"]) if document.get("file_size") is not None else None,
    )


class CloudAPIClient:
    """Synchronous client on httpx, one per (channel, process); reuses connections.

    `base_url` is ``https://graph.facebook.com`` in production and the fake server's URL in
    tests. The access token is sent as a Bearer token and never logged or repr'd."""

    def __init__(
        self,
        *,
        phone_number_id: str,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_connections: int = 20,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.endpoints = _Endpoints(base_url, api_version, phone_number_id)
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._async_settings = {
            "phone_number_id": phone_number_id,
            "access_token": access_token,
            "base_url": base_url,
            "api_version": api_version,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
        }
        self._batch: _BatchLoop | None = None
        self._owns_client = http_client is None
        self._given_http = http_client
        self._http_settings = (timeout, connect_timeout, max_connections)
        self._sync_http: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        # Built on first use: a sender that only sends batches (on the event loop) never
        # needs it, and each one costs a TLS context.
        if self._given_http is not None:
            return self._given_http
        if self._sync_http is None:
            timeout, connect_timeout, max_connections = self._http_settings
            self._sync_http = httpx.Client(
                timeout=httpx.Timeout(timeout, connect=connect_timeout),
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
        return self._sync_http

    def __repr__(self) -> str:
        return f"<CloudAPIClient phone_number_id={self.endpoints.phone_number_id}>"

    def __enter__(self) -> CloudAPIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self._owns_client and self._sync_http is not None:
            self._sync_http.close()
            self._sync_http = None

    def _post(
        self, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            return self._http.post(url, headers={**self._headers, **(headers or {})}, **kwargs)
        except httpx.TransportError as exc:
            maybe = _httpx_maybe_accepted(exc)
            logger.warning(
                "Cloud API transport failure (%s) for phone_number_id=%s, maybe_accepted=%s",
                type(exc).__name__,
                self.endpoints.phone_number_id,
                maybe,
            )
            raise _transport_error(exc, maybe_accepted=maybe) from exc

    def send(self, payload: Mapping[str, Any]) -> SendResult:
        """POST one message payload; SendResult on success, CloudAPIError otherwise."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        response = self._post(
            self.endpoints.messages_url,
            content=body,
            headers={"Content-Type": "application/json"},
        )
        if response.is_success:
            return result_from_response(response.status_code, response.content)
        error = error_from_response(response.status_code, response.content)
        logger.info(
            "Cloud API refused a message for phone_number_id=%s: code=%s http=%s action=%s",
            self.endpoints.phone_number_id,
            error.code,
            error.http_status,
            error.action.value,
        )
        raise error

    def send_many(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 32,
        reserve: Callable[[int], Sequence[float]] | None = None,
        late_after: float = 0.05,
    ) -> list[SendResult | CloudAPIError]:
        """Send many payloads concurrently; results (or errors) in the same order.

        For synchronous workers that drain a batch of the outbox: requests overlap on an
        aiohttp event loop running in a background thread, which moves several times more
        messages per second than sending them one by one. Never raises CloudAPIError itself;
        each failure is returned in its slot, with its action and maybe_accepted.

        With a rate limiter, `reserve(count)` gives the time.monotonic() moments the next
        `count` requests may leave at; it is asked just in time, a few requests at a time, and
        none leaves earlier. A request that finds itself more than `late_after` seconds past
        its moment (a busy machine) asks for a new one rather than catch up in a burst."""
        return self.send_many_start(
            payloads, concurrency=concurrency, reserve=reserve, late_after=late_after
        ).result()

    def send_many_start(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 32,
        reserve: Callable[[int], Sequence[float]] | None = None,
        late_after: float = 0.05,
    ) -> concurrent.futures.Future[list[SendResult | CloudAPIError]]:
        """`send_many` without waiting: the future of its results. Batches of several clients
        (several numbers) started this way run at the same time on the process's one loop."""
        if not payloads:
            done: concurrent.futures.Future[list[SendResult | CloudAPIError]]
            done = concurrent.futures.Future()
            done.set_result([])
            return done
        if self._batch is None or not self._batch.usable():
            self._batch = _BatchLoop(self._async_settings, max_connections=concurrency)
        return self._batch.start(payloads, concurrency, reserve, late_after)

    def upload_media(self, path: str | Path, mime_type: str | None = None) -> str:
        """Upload a file once; returns the media id to send by `id` (valid about 30 days)."""
        path = Path(path)
        mime_type = mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as handle:
            response = self._post(
                self.endpoints.media_url,
                data={"messaging_product": "whatsapp", "type": mime_type},
                files={"file": (path.name, handle, mime_type)},
            )
        if not response.is_success:
            raise error_from_response(response.status_code, response.content)
        try:
            media_id = json.loads(response.content)["id"]
        except (ValueError, KeyError, TypeError):
            raise CloudAPIError(
                code=None,
                title="Unreadable media upload response",
                http_status=response.status_code,
                action=Action.FAIL_VISIBLY,
            ) from None
        return str(media_id)

    def get_media(self, media_id: str) -> MediaInfo:
        """GET /{version}/{media-id}: the media's download URL, type, hash and size."""
        try:
            response = self._http.get(
                self.endpoints.media_info_url(media_id), headers=self._headers
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, maybe_accepted=False) from exc
        if not response.is_success:
            raise error_from_response(response.status_code, response.content)
        return _media_info(media_id, response.content)

    def download_media(self, url: str) -> bytes:
        """GET a media's bytes from the `url` get_media gave (it needs the same token)."""
        try:
            response = self._http.get(url, headers=self._headers)
        except httpx.TransportError as exc:
            raise _transport_error(exc, maybe_accepted=False) from exc
        if not response.is_success:
            raise error_from_response(response.status_code, response.content)
        return response.content


class AsyncCloudAPIClient:
    """The same client on aiohttp, for high-throughput senders and the benchmark ceiling.

    aiohttp rather than httpx.AsyncClient because it moves several times more requests per
    second per core, which is what the outbound benchmark measures. Create it inside the event
    loop that will use it."""

    def __init__(
        self,
        *,
        phone_number_id: str,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_connections: int = 100,
        sessions: dict[tuple[Any, ...], Any] | None = None,
        timed_by_caller: bool = False,
    ) -> None:
        self.endpoints = _Endpoints(base_url, api_version, phone_number_id)
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self.timeout = timeout
        # A caller that gives up on slow requests itself (_BatchLoop's watchdog) spares
        # aiohttp a timer per request; connecting keeps its own timeout.
        self._timeout = None if timed_by_caller else timeout
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._session: Any = None
        self._messages_url = yarl.URL(self.endpoints.messages_url)
        # Sessions shared by the clients of one event loop (several numbers under one token
        # and host share one connection pool): fewer connections, fewer events per request.
        self._sessions = sessions
        self._session_key = (
            base_url,
            access_token,
            self._timeout,
            connect_timeout,
            max_connections,
        )

    def __repr__(self) -> str:
        return f"<AsyncCloudAPIClient phone_number_id={self.endpoints.phone_number_id}>"

    async def __aenter__(self) -> AsyncCloudAPIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _get_session(self) -> Any:
        import aiohttp

        if self._session is not None and not self._session.closed:
            return self._session
        if self._sessions is not None:
            shared = self._sessions.get(self._session_key)
            if shared is not None and not shared.closed:
                self._session = shared
                return shared
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=self._connect_timeout),
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            # The Graph API sets no cookies we need: not keeping a jar saves work per request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Every request of this session posts JSON: set once, not per request.
            headers={**self._headers, "Content-Type": "application/json"},
        )
        if self._sessions is not None:
            self._sessions[self._session_key] = self._session
        return self._session

    async def close(self) -> None:
        # A shared session is closed with the others (close_sessions), not by one client.
        if self._session is not None and self._sessions is None:
            await self._session.close()
        self._session = None

    async def send(self, payload: Mapping[str, Any]) -> SendResult:

        import aiohttp

        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        session = self._get_session()
        try:
            async with session.post(self._messages_url, data=body) as response:
                content = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _transport_error(exc, maybe_accepted=False) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, maybe_accepted=True) from exc
        if 200 <= status < 300:
            return result_from_response(status, content)
        raise error_from_response(status, content)


# Paced requests leave on a shared tick of the process's loop (see _BatchLoop.start): every
# number's requests due by a tick go out together, a little after their moments, never before.
PACING_TICK = 0.01


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop does its socket reads and writes without giving up the interpreter's lock around
    # each call: the sender's other thread (claims, Message rows) then costs the loop far
    # fewer lock hand-offs than asyncio's own loop (decision 0100).
    import uvloop

    return uvloop.new_event_loop()


class _SharedLoop:
    """One event loop per process, in a daemon thread, on which every client's batches run:
    several numbers send at the same time without a thread each. A forked child (an RQ job)
    does not inherit the thread, so it starts its own."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _pid = 0
    # The aiohttp sessions of the clients on this loop, by host, token and settings.
    sessions: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._pid != os.getpid() or cls._loop.is_closed():
                loop = _new_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="cloud-api-batch", daemon=True
                )
                thread.start()
                cls._loop, cls._pid, cls.sessions = loop, os.getpid(), {}
            return cls._loop

    # The pending ticks of the loop, by the moment they fire at.
    _ticks: dict[float, asyncio.Future[None]] = {}

    @classmethod
    def tick(cls, loop: asyncio.AbstractEventLoop, moment: float) -> asyncio.Future[None]:
        """A future that completes on the first PACING_TICK boundary after `moment`, shared by
        every request waiting for that tick (one timer per tick, not one per request)."""
        when = math.ceil(moment / PACING_TICK) * PACING_TICK
        if when <= moment:  # never before the moment, whatever the rounding
            when += PACING_TICK
        ticks = cls._ticks
        waiting = ticks.get(when)
        if waiting is None or waiting.get_loop() is not loop:
            waiting = loop.create_future()
            ticks[when] = waiting

            def fire(future: asyncio.Future[None] = waiting, at: float = when) -> None:
                if ticks.get(at) is future:
                    del ticks[at]
                if not future.done():
                    future.set_result(None)

            loop.call_at(when, fire)
        # Shielded: one waiter cancelled does not cancel the tick for the others.
        return asyncio.shield(waiting)

    @classmethod
    def close_sessions(cls) -> None:
        """Close the shared sessions (clients made afterwards open new ones)."""
        with cls._lock:
            loop, sessions = cls._loop, list(cls.sessions.values())
            if loop is None or cls._pid != os.getpid() or loop.is_closed() or not sessions:
                return
            cls.sessions.clear()  # in place: the clients hold this dict

        async def close_all() -> None:
            for session in sessions:
                await session.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(5)


def close_sessions() -> None:
    """Close the connection pools that CloudAPIClient batches share in this process."""
    _SharedLoop.close_sessions()


# Connections of the pool that every number on the process's loop shares (one host, one token):
# enough for several numbers' batches at once, so that no request waits for a free one.
POOL = 256


class _BatchLoop:
    """A client's AsyncCloudAPIClient on the process's shared event loop, for send_many."""

    def __init__(self, settings: Mapping[str, Any], *, max_connections: int) -> None:
        self._loop = _SharedLoop.get()
        self._pid = os.getpid()
        self._client = AsyncCloudAPIClient(
            **settings,
            max_connections=max(POOL, max_connections),
            sessions=_SharedLoop.sessions,
            timed_by_caller=True,
        )

    def usable(self) -> bool:
        return self._pid == os.getpid() and not self._loop.is_closed()

    def start(
        self,
        payloads: Sequence[Mapping[str, Any]],
        concurrency: int,
        reserve: Callable[[int], Sequence[float]] | None = None,
        late_after: float = 0.05,
    ) -> concurrent.futures.Future[list[SendResult | CloudAPIError]]:
        async def run() -> list[SendResult | CloudAPIError]:
            loop = asyncio.get_running_loop()  # its time() is time.monotonic()
            limit = max(1, concurrency)
            results: list[SendResult | CloudAPIError] = [MissedSlot()] * len(payloads)
            moments: list[float] = []  # of requests index, index + 1, ...
            taken = 0  # moments used
            chunk = max(1, min(concurrency, 64))
            sending: list[asyncio.Task[None]] = []
            # Requests in flight, and what the loop below waits on when `limit` are: a counter
            # rather than an asyncio.Semaphore, whose bookkeeping cost as much per request as
            # the rest of the loop on a paced batch.
            in_flight = 0
            freed: asyncio.Future[None] | None = None
            # Requests in flight by when they left; one watchdog gives up on those older than
            # the client's timeout (as aiohttp's own timeout would, with a timer per request).
            leaving: dict[asyncio.Task[None], float] = {}
            timed_out: set[asyncio.Task[None]] = set()
            timeout = self._client.timeout

            async def watchdog() -> None:
                while True:
                    await asyncio.sleep(min(1.0, timeout / 4))
                    now = loop.time()
                    for task, left in list(leaving.items()):
                        if now - left > timeout:
                            timed_out.add(task)
                            task.cancel()

            async def one(index: int) -> None:
                nonlocal in_flight
                try:
                    results[index] = await self._client.send(payloads[index])
                except CloudAPIError as error:
                    results[index] = error
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task not in timed_out:
                        raise
                    # It left and got no answer in time: Meta may have accepted it.
                    results[index] = _transport_error(TimeoutError(), maybe_accepted=True)
                finally:
                    leaving.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
                    in_flight -= 1
                    if freed is not None and not freed.done():
                        freed.set_result(None)

            index = 0
            while index < len(payloads):
                if in_flight >= limit:
                    freed = loop.create_future()
                    await freed
                    continue
                if reserve is not None:
                    if taken == len(moments):
                        count = min(chunk, len(payloads) - index)
                        try:
                            moments = list(await loop.run_in_executor(None, reserve, count))
                        except Exception:
                            # No moment, no send: the rest stays MissedSlot (sent again
                            # later); what already left keeps its result.
                            logger.exception("rate limiter failed mid-batch")
                            break
                        taken = 0
                        if not moments:
                            break
                    delay = moments[taken] - loop.time()
                    if delay > 0:
                        # Wake on the first tick after the moment, with every other number
                        # due by then: their requests leave in one pass of the loop, and the
                        # server reads them together, instead of one wake-up per request (at
                        # 800 msg/s per number those cost more than the requests themselves).
                        await _SharedLoop.tick(loop, moments[taken])
                        continue  # check again: a wake-up on a busy machine may come late
                    if -delay > late_after:
                        moments, taken = [], 0  # too late for these moments: reserve new ones
                        continue
                    taken += 1
                in_flight += 1
                task = loop.create_task(one(index))
                leaving[task] = loop.time()
                sending.append(task)
                index += 1
            guard = loop.create_task(watchdog())
            try:
                await asyncio.gather(*sending)
            finally:
                guard.cancel()
            return results

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    def close(self) -> None:
        if not self.usable():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(5)
