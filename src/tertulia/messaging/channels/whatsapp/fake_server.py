"""A local fake of the WhatsApp Business Cloud API, speaking its real HTTP and JSON.

It implements what tertulia uses:

    POST /{version}/{phone-number-id}/messages   send a message (validated like Meta does)
    POST /{version}/{phone-number-id}/media      upload media (multipart: file, type,
                                                 messaging_product) -> {"id": ...}
    GET  /{version}/{media-id}                   media metadata (url, mime_type, sha256, ...)
    GET  /_fake/media/{media-id}                 the media bytes (the `url` above)

and behaves like Meta around them: Bearer-token auth, the Graph error envelope, configurable
latency and injected faults (HTTP 429 with 130429, 5xx, requests that hang past the client's
timeout before or *after* the message was accepted, 131047 synchronously or later by a `failed`
status), signed status webhooks (sent, delivered, read, played; pricing) posted back to our
webhook URL, and simulated participants who reply with text or by tapping buttons.

Every accepted message is appended to `MessageLog` (in memory, optionally JSONL on disk) with
the fields that matter for exactly-once checks: recipient, a hash of the content and our
reference (`biz_opaque_callback_data`). Tests and benchmarks read that log, not our database,
to prove each message reached "Meta" exactly once.

Use it in-process (it runs its own event loop in a background thread)::

    with run_fake_whatsapp(webhook_url=..., app_secret="s", token="t") as fake:
        client = CloudAPIClient(phone_number_id=fake.phone_number_id, access_token="t",
                                base_url=fake.base_url)
        ...
        assert len(fake.log) == 1

or as ``tertulia fake-whatsapp --port 8765 ...`` (see cli.py). Built on aiohttp because one
process must absorb well over 1,000 requests per second on a small machine for the outbound
benchmark.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from .signature import SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

GRAPH_TRACE = "AFakeTraceId"
REENGAGEMENT_DETAILS = (
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number."
)
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# code -> (HTTP status, message title, details). Titles follow Meta's error-code reference.
ERROR_CATALOGUE: dict[int, tuple[int, str, str]] = {
    1: (500, "An unknown error occurred", "An unknown error occurred."),
    2: (503, "Service temporarily unavailable", "Service temporarily unavailable."),
    100: (400, "Invalid parameter", "Invalid parameter."),
    190: (401, "Error validating access token", "The access token is invalid or has expired."),
    368: (400, "Temporarily blocked for policies violations", "The account is restricted."),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Something went wrong."),
    131008: (400, "Required parameter is missing", "A required parameter is missing."),
    131009: (400, "Parameter value is not valid", "A parameter value is not valid."),
    131016: (503, "Service unavailable", "A service is temporarily unavailable."),
    131026: (400, "Message undeliverable", "Unable to deliver message."),
    131030: (400, "Recipient phone number not in allowed list", "Add it to the allowed list."),
    131031: (400, "Account has been locked", "The business account is locked."),
    131047: (400, "Re-engagement message", REENGAGEMENT_DETAILS),
    131048: (400, "Spam rate limit hit", "Too many previous messages were blocked or flagged."),
    131049: (400, "Meta chose not to deliver.", "Healthy ecosystem engagement limit."),
    131050: (400, "User has stopped marketing messages", "The user stopped marketing messages."),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
    131053: (400, "Media upload error", "Unable to upload the media used in the message."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from this phone number to the same phone number in a short "
        "period of time.",
    ),
    132000: (400, "Number of parameters does not match the expected number of params", ""),
    132001: (400, "Template name does not exist in the translation", ""),
}

MESSAGE_TYPES = frozenset(
    {
        "text",
        "audio",
        "image",
        "video",
        "document",
        "sticker",
        "interactive",
        "template",
        "reaction",
        "location",
        "contacts",
    }
)
MEDIA_TYPES = ("audio", "image", "video", "document", "sticker")


class GraphError(Exception):
    """An error the fake answers with, in Meta's envelope."""

    def __init__(
        self, code: int, details: str | None = None, *, subcode: int | None = None
    ) -> None:
        http_status, title, default_details = ERROR_CATALOGUE.get(code, (400, "Error", ""))
        self.code = code
        self.http_status = http_status
        self.title = title
        self.details = details if details is not None else default_details
        self.subcode = subcode
        super().__init__(f"({code}) {title}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": f"(#{self.code}) {self.title}",
            "type": "OAuthException",
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = GRAPH_TRACE
        return {"error": error}

    def status_error(self) -> dict[str, Any]:
        """The same error as it appears in a failed status webhook."""
        return {
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details},
            "href": ERROR_HREF,
        }


@dataclasses.dataclass(frozen=True)
class TemplateSpec:
    """What the fake knows of an approved template (when a registry is configured)."""

    category: str = "utility"
    body_params: int = 0
    buttons: tuple[str, ...] = ()  # quick-reply button titles, in order
    languages: tuple[str, ...] = ()  # empty: any language


@dataclasses.dataclass
class FakeConfig:
    token: str = "fake-token"  # noqa: S105 - the fake's own, never a real credential
    app_secret: str = "fake-app-secret"  # noqa: S105
    phone_number_id: str = "100000000000001"
    # More business numbers on the same fake (a program spreads its cohorts over several):
    # each is accepted, logged under its own id and rate-limited on its own.
    other_phone_number_ids: tuple[str, ...] = ()
    display_phone_number: str = "51900000001"
    waba_id: str = "200000000000001"
    # Where signed webhooks go; None disables them.
    webhook_url: str | None = None
    # Latency added to every request, uniform in [latency_ms, latency_ms + latency_jitter_ms].
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # Fault rates, each a probability per send request (one draw decides which, if any).
    fault_429: float = 0.0
    fault_5xx: float = 0.0
    fault_timeout: float = 0.0  # hang, never accept
    fault_timeout_accepted: float = 0.0  # accept, then hang: the "maybe accepted" case
    fault_131047_sync: float = 0.0
    fault_131047_async: float = 0.0  # accept (200 + id), then a failed status with 131047
    hang_seconds: float = 30.0
    # Real rules, off by default.
    enforce_window: bool = False  # free-form outside 24 h of the last inbound -> 131047
    window_sync: bool = False  # ... answered at once (HTTP 400) instead of accepted, then failed
    window_hours: float = 24.0
    # The time stamped on webhooks and by which the window is measured (rates use real time):
    # a demo in simulated time passes its clock.
    clock: Callable[[], float] = time.time
    mps_limit: float | None = None  # messages per second per number; above -> 130429
    pair_limit: tuple[int, float] | None = None  # (burst, seconds) per recipient -> 131056
    strict_media: bool = False  # media ids must have been uploaded here
    templates: Mapping[str, TemplateSpec] | None = None  # None: accept any template
    default_template_category: str = "utility"
    # Status webhooks.
    statuses: tuple[str, ...] = ("sent", "delivered", "read")
    status_delay_ms: float = 0.0
    read_probability: float = 1.0
    skip_delivered_probability: float = 0.0
    status_batch: int = 50  # statuses per webhook POST at most (Meta batches under load)
    status_linger_ms: float = 10.0
    duplicate_webhook_probability: float = 0.0  # Meta re-delivers; we must dedupe
    webhook_retries: int = 5
    webhook_concurrency: int = 8
    # Simulated participants.
    reply_probability: float = 0.0
    reply_delay_ms: float = 0.0
    reply_texts: tuple[str, ...] = ("Gracias", "Sí, lo intentaré", "Hoy no pude", "👍")
    responder: Callable[[AcceptedMessage], list[dict[str, Any]] | None] | None = None
    # Append-only JSONL copy of the log (no message bodies, only hashes).
    log_path: str | None = None
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class AcceptedMessage:
    seq: int
    message_id: str
    phone_number_id: str
    to: str
    type: str
    body_sha256: str
    reference: str | None
    template: str | None
    received_at: float
    payload: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.message_id,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "type": self.type,
            "body_sha256": self.body_sha256,
            "reference": self.reference,
            "template": self.template,
            "received_at": self.received_at,
        }


class MessageLog:
    """Append-only, thread-safe record of every message the fake accepted."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._entries: list[AcceptedMessage] = []
        self._cond = threading.Condition()
        # The counts waiters wait for: an append wakes them only when one is reached, not
        # for every message (a benchmark's waiting thread would otherwise compete with the
        # server's loop for the interpreter on each of thousands of sends).
        self._awaited: list[int] = []
        self._file = Path(path).open("a", encoding="utf-8") if path else None  # noqa: SIM115

    def append(self, entry: AcceptedMessage) -> None:
        with self._cond:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry.record()) + "\n")
                self._file.flush()
            if self._awaited and len(self._entries) >= min(self._awaited):
                self._cond.notify_all()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def entries(self) -> list[AcceptedMessage]:
        with self._cond:
            return list(self._entries)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` messages were accepted; False on timeout."""
        with self._cond:
            self._awaited.append(count)
            try:
                return self._cond.wait_for(lambda: len(self._entries) >= count, timeout)
            finally:
                self._awaited.remove(count)

    def by_reference(self) -> dict[str, list[AcceptedMessage]]:
        groups: dict[str, list[AcceptedMessage]] = collections.defaultdict(list)
        for entry in self.entries():
            if entry.reference is not None:
                groups[entry.reference].append(entry)
        return dict(groups)

    def duplicate_references(self) -> dict[str, list[AcceptedMessage]]:
        """References accepted more than once: each is a message delivered twice."""
        return {ref: group for ref, group in self.by_reference().items() if len(group) > 1}

    def duplicate_contents(self) -> dict[tuple[str, str], list[AcceptedMessage]]:
        """Same recipient and same content more than once (useful when no reference is sent)."""
        groups: dict[tuple[str, str], list[AcceptedMessage]] = collections.defaultdict(list)
        for entry in self.entries():
            groups[(entry.to, entry.body_sha256)].append(entry)
        return {key: group for key, group in groups.items() if len(group) > 1}

    def max_rate(self, window: float = 1.0) -> int:
        """The most messages accepted within any `window` seconds (to check rate limits)."""
        times = sorted(entry.received_at for entry in self.entries())
        best = 0
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best


@dataclasses.dataclass
class WebhookStats:
    posts: int = 0
    events: int = 0
    failures: int = 0
    duplicates: int = 0


def body_hash(payload: Mapping[str, Any]) -> str:
    """Hash of what the recipient would see: the payload minus routing and tracking fields."""
    content = {
        k: v
        for k, v in payload.items()
        if k not in {"to", "recipient", "biz_opaque_callback_data", "messaging_product"}
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalize_phone(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


# -- request validation, like Meta's ---------------------------------------------------------------


def _require_str(container: Mapping[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if value is None or value == "":
        raise GraphError(131008, f"The parameter {path} is required.")
    if not isinstance(value, str):
        raise GraphError(100, f"Param {path} must be a string.")
    return value


def _max_len(value: str, limit: int, path: str) -> None:
    if len(value) > limit:
        raise GraphError(100, f"Param {path} must be at most {limit} characters long.")


def validate_message(payload: Any, config: FakeConfig | None = None) -> None:
    """Raise GraphError for a payload Meta would refuse; return None when it is acceptable."""
    if not isinstance(payload, dict):
        raise GraphError(100, "The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        if "messaging_product" not in payload:
            raise GraphError(100, "The parameter messaging_product is required.")
        raise GraphError(100, "Param messaging_product must be 'whatsapp'.")
    to = payload.get("to")
    recipient = payload.get("recipient")
    if not to and not recipient:
        raise GraphError(100, "The parameter to is required.")
    if to is not None:
        if not isinstance(to, str):
            raise GraphError(100, "Param to must be a string.")
        digits = normalize_phone(to)
        if not 6 <= len(digits) <= 15 or any(ch.isalpha() for ch in to):
            raise GraphError(131009, "Recipient phone number is not valid.")
    elif not isinstance(recipient, str):
        raise GraphError(100, "Param recipient must be a string.")
    reference = payload.get("biz_opaque_callback_data")
    if reference is not None:
        if not isinstance(reference, str):
            raise GraphError(100, "Param biz_opaque_callback_data must be a string.")
        _max_len(reference, 512, "biz_opaque_callback_data")
    context = payload.get("context")
    if context is not None and not (
        isinstance(context, dict) and isinstance(context.get("message_id"), str)
    ):
        raise GraphError(131009, "Param context['message_id'] must be a message id.")
    kind = payload.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise GraphError(131009, f"Param type must be one of {sorted(MESSAGE_TYPES)}.")
    raw_body = payload.get(kind)
    if not isinstance(raw_body, dict):
        if kind == "contacts" and isinstance(raw_body, list):
            return
        raise GraphError(131008, f"The parameter {kind} is required.")
    body: dict[str, Any] = raw_body
    if kind == "text":
        text = _require_str(body, "body", "text['body']")
        _max_len(text, 4096, "text['body']")
    elif kind in MEDIA_TYPES:
        has_id, has_link = "id" in body, "link" in body
        if not has_id and not has_link:
            raise GraphError(131008, f"The parameter {kind}['id'] or {kind}['link'] is required.")
        if has_id and has_link:
            raise GraphError(131009, f"Param {kind} must have only one of id and link.")
        caption = body.get("caption")
        if caption is not None:
            if kind in ("audio", "sticker"):
                raise GraphError(131009, f"Param {kind}['caption'] is not supported.")
            if not isinstance(caption, str):
                raise GraphError(100, f"Param {kind}['caption'] must be a string.")
            _max_len(caption, 1024, f"{kind}['caption']")
    elif kind == "interactive":
        _validate_interactive(body)
    elif kind == "template":
        _validate_template(body, config)
    elif kind == "reaction":
        _require_str(body, "message_id", "reaction['message_id']")
        if not isinstance(body.get("emoji"), str):
            raise GraphError(131008, "The parameter reaction['emoji'] is required.")
    elif kind == "location":
        for key in ("latitude", "longitude"):
            if not isinstance(body.get(key), int | float | str):
                raise GraphError(131008, f"The parameter location['{key}'] is required.")


def _validate_interactive(body: Mapping[str, Any]) -> None:
    kind = body.get("type")
    if kind not in ("button", "list", "cta_url", "flow", "product", "product_list"):
        raise GraphError(131009, "Param interactive['type'] is not valid.")
    text = _require_str(body.get("body") or {}, "text", "interactive['body']['text']")
    _max_len(text, 1024, "interactive['body']['text']")
    header = body.get("header")
    if isinstance(header, dict) and header.get("type") == "text":
        _max_len(str(header.get("text", "")), 60, "interactive['header']['text']")
    footer = body.get("footer")
    if isinstance(footer, dict):
        _max_len(str(footer.get("text", "")), 60, "interactive['footer']['text']")
    action = body.get("action")
    if not isinstance(action, dict):
        raise GraphError(131008, "The parameter interactive['action'] is required.")
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            raise GraphError(131008, "The parameter interactive['action']['buttons'] is required.")
        if len(buttons) > 3:
            raise GraphError(131009, "Buttons count is invalid: at most 3 buttons are allowed.")
        ids, titles = set(), set()
        for index, button in enumerate(buttons):
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict):
                raise GraphError(131008, f"The parameter buttons[{index}]['reply'] is required.")
            path = f"interactive['action']['buttons'][{index}]['reply']"
            title = _require_str(reply, "title", f"{path}['title']")
            button_id = _require_str(reply, "id", f"{path}['id']")
            _max_len(title, 20, f"{path}['title']")
            _max_len(button_id, 256, f"{path}['id']")
            if button_id in ids or title in titles:
                raise GraphError(131009, "Button title and id must be unique.")
            ids.add(button_id)
            titles.add(title)
    elif kind == "list":
        button = _require_str(action, "button", "interactive['action']['button']")
        _max_len(button, 20, "interactive['action']['button']")
        sections = action.get("sections")
        if not isinstance(sections, list) or not sections:
            raise GraphError(131008, "The parameter interactive['action']['sections'] is required.")
        if len(sections) > 10:
            raise GraphError(131009, "Sections count is invalid: at most 10 are allowed.")
        rows_total = 0
        row_ids: set[str] = set()
        for s_index, section in enumerate(sections):
            rows = section.get("rows") if isinstance(section, dict) else None
            if not isinstance(rows, list) or not rows:
                raise GraphError(131008, f"The parameter sections[{s_index}]['rows'] is required.")
            if len(sections) > 1:
                _require_str(section, "title", f"sections[{s_index}]['title']")
            if isinstance(section.get("title"), str):
                _max_len(section["title"], 24, f"sections[{s_index}]['title']")
            for r_index, row in enumerate(rows):
                path = f"sections[{s_index}]['rows'][{r_index}]"
                if not isinstance(row, dict):
                    raise GraphError(131008, f"The parameter {path} is required.")
                row_id = _require_str(row, "id", f"{path}['id']")
                _max_len(_require_str(row, "title", f"{path}['title']"), 24, f"{path}['title']")
                _max_len(row_id, 200, f"{path}['id']")
                if isinstance(row.get("description"), str):
                    _max_len(row["description"], 72, f"{path}['description']")
                if row_id in row_ids:
                    raise GraphError(131009, "Row ids must be unique.")
                row_ids.add(row_id)
            rows_total += len(rows)
        if rows_total > 10:
            raise GraphError(131009, "Rows count is invalid: at most 10 rows are allowed.")


def _validate_template(body: Mapping[str, Any], config: FakeConfig | None) -> None:
    name = _require_str(body, "name", "template['name']")
    language = body.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise GraphError(131008, "The parameter template['language']['code'] is required.")
    components = body.get("components", [])
    if not isinstance(components, list):
        raise GraphError(100, "Param template['components'] must be an array.")
    if config is None or config.templates is None:
        return
    spec = config.templates.get(name)
    if spec is None or (spec.languages and language["code"] not in spec.languages):
        raise GraphError(132001, f"template name ({name}) does not exist in {language['code']}")
    given = sum(
        len(c.get("parameters") or [])
        for c in components
        if isinstance(c, dict) and c.get("type") == "body"
    )
    if given != spec.body_params:
        raise GraphError(
            132000,
            f"body: number of localizable_params ({given}) does not match the expected "
            f"number of params ({spec.body_params})",
        )


# -- the server ---------------------------------------------------------------------------------


class FakeWhatsApp:
    """The fake Cloud API. Start it with `start()` (background thread), `run_fake_whatsapp()`
    (context manager), or `await start_async()` inside an existing event loop."""

    def __init__(self, config: FakeConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or FakeConfig(), **overrides)
        self.log = MessageLog(self.config.log_path)
        self.webhook_stats = WebhookStats()
        self.rng = random.Random(self.config.seed)
        self.base_url = ""
        self.port = 0
        self._seq = itertools.count(1)
        self._media: dict[str, dict[str, Any]] = {}
        self._forced: collections.deque[tuple[str | int, bool]] = collections.deque()
        self._forced_lock = threading.Lock()
        self._token_expired = False
        self._last_inbound: dict[str, float] = {}
        self._recent: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._recent_pair: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Future[Any]] = set()
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._busy = 0  # webhook batches being posted right now

    # -- public controls (thread-safe) -----------------------------------------------------------

    @property
    def phone_number_id(self) -> str:
        return self.config.phone_number_id

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/v23.0/{self.config.phone_number_id}/messages"

    def force(self, fault: str | int, *, times: int = 1, asynchronous: bool = False) -> None:
        """Make the next `times` send requests fail this way, ahead of the random rates.

        `fault` is "429", "5xx", "timeout", "timeout_accepted", "131047_async", or any Cloud API
        error code (returned synchronously, or by failed-status webhook if `asynchronous`)."""
        with self._forced_lock:
            for _ in range(times):
                self._forced.append((fault, asynchronous))

    def expire_token(self) -> None:
        """From now on every request fails with 190 (session expired), until `renew_token`."""
        self._token_expired = True

    def renew_token(self) -> None:
        self._token_expired = False

    def open_window(self, to: str, at: float | None = None) -> None:
        """Record an inbound message from `to`, opening his 24-hour customer-service window."""
        self._last_inbound[normalize_phone(to) or to] = self.config.clock() if at is None else at

    def expire_media(self, media_id: str) -> None:
        self._media.pop(media_id, None)

    def send_inbound(
        self,
        sender: str,
        text: str | None = None,
        *,
        button: tuple[str, str] | None = None,
        interactive: dict[str, Any] | None = None,
        message: dict[str, Any] | None = None,
        name: str = "Participante",
        user_id: str | None = None,
        context_id: str | None = None,
        referral: dict[str, Any] | None = None,
    ) -> str:
        """Post a signed inbound-message webhook as if `sender` wrote to us; returns its id.

        Give `text`, or `button` (payload, text) for a template quick reply, or `interactive`
        (e.g. {"type": "button_reply", "button_reply": {"id": ..., "title": ...}}), or a whole
        `message` body (e.g. {"type": "audio", "audio": {...}})."""
        if message is not None:
            body = dict(message)
        elif button is not None:
            body = {"type": "button", "button": {"payload": button[0], "text": button[1]}}
        elif interactive is not None:
            body = {"type": "interactive", "interactive": interactive}
        else:
            body = {"type": "text", "text": {"body": text or ""}}
        if referral is not None:
            body["referral"] = referral
        message_id = self._new_message_id()
        coro = self._queue_inbound(sender, body, name, user_id, context_id, message_id)
        self._call(coro)
        return message_id

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every scheduled webhook has been posted (or given up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call(self._idle()):
                return True
            time.sleep(0.01)
        return False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeWhatsApp:
        """Serve from a background thread with its own event loop; returns once listening."""
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async(host, port))
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-whatsapp", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
        self.log.close()

    def __enter__(self) -> FakeWhatsApp:
        if self._thread is None and self._runner is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def start_async(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._queue = asyncio.Queue()
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_post("/{version}/{phone_id}/messages", self._handle_messages)
        app.router.add_post("/{version}/{phone_id}/media", self._handle_media_upload)
        app.router.add_get("/_fake/media/{media_id}", self._handle_media_download)
        app.router.add_get("/_fake/stats", self._handle_stats)
        app.router.add_get("/{version}/{media_id}", self._handle_media_info)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.base_url = f"http://{host}:{self.port}"
        if self.config.webhook_url:
            self._session = ClientSession(
                timeout=ClientTimeout(total=10),
                connector=TCPConnector(limit=self.config.webhook_concurrency * 2),
            )
            for _ in range(max(1, self.config.webhook_concurrency)):
                self._workers.append(asyncio.create_task(self._webhook_worker()))

    async def _stop_async(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for future in list(self._pending):
            future.cancel()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, *self._pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def stop_async(self) -> None:
        await self._stop_async()
        self.log.close()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "the fake is not running"
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return asyncio.ensure_future(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- helpers ---------------------------------------------------------------------------------

    def _new_message_id(self) -> str:
        raw = f"{self.config.phone_number_id}:{next(self._seq)}:{self.rng.getrandbits(64)}"
        return "wamid." + base64.b64encode(raw.encode()).decode()

    def _authorized(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise GraphError(190, "An access token is required to request this resource.")
        if not hmac.compare_digest(header[7:].encode(), self.config.token.encode()):
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        if self._token_expired:
            raise GraphError(
                190, "Error validating access token: Session has expired.", subcode=463
            )

    def _check_phone(self, phone_id: str) -> None:
        if phone_id != self.config.phone_number_id and (
            phone_id not in self.config.other_phone_number_ids
        ):
            raise GraphError(
                100,
                f"Unsupported post request. Object with ID '{phone_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                subcode=33,
            )

    async def _latency(self) -> None:
        delay = self.config.latency_ms + self.rng.random() * self.config.latency_jitter_ms
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)

    async def _hang(self) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.config.hang_seconds)

    def _draw_fault(self) -> tuple[str | int, bool] | None:
        with self._forced_lock:
            if self._forced:
                return self._forced.popleft()
        c = self.config
        draw = self.rng.random()
        for name, rate in (
            ("429", c.fault_429),
            ("5xx", c.fault_5xx),
            ("timeout", c.fault_timeout),
            ("timeout_accepted", c.fault_timeout_accepted),
            (131047, c.fault_131047_sync),
            ("131047_async", c.fault_131047_async),
        ):
            if draw < rate:
                return (name, False)
            draw -= rate
        return None

    def _check_rates(self, to: str, phone_id: str = "") -> None:
        now = time.monotonic()
        if self.config.mps_limit is not None:
            recent_sends = self._recent[phone_id or self.config.phone_number_id]
            while recent_sends and now - recent_sends[0] >= 1.0:
                recent_sends.popleft()
            if len(recent_sends) >= self.config.mps_limit:
                raise GraphError(130429)
            recent_sends.append(now)
        if self.config.pair_limit is not None:
            burst, seconds = self.config.pair_limit
            recent = self._recent_pair[to]
            while recent and now - recent[0] >= seconds:
                recent.popleft()
            if len(recent) >= burst:
                raise GraphError(131056)
            recent.append(now)

    def _window_open(self, to: str) -> bool:
        last = self._last_inbound.get(to)
        return last is not None and self.config.clock() - last < self.config.window_hours * 3600

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(
            body=json.dumps(body, separators=(",", ":")).encode(),
            status=status,
            content_type="application/json",
        )

    def _error(self, error: GraphError) -> web.Response:
        return self._json(error.body(), error.http_status)

    # -- handlers --------------------------------------------------------------------------------

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorized(request)
            self._check_phone(request.match_info["phone_id"])
            raw = await request.read()
            await self._latency()
            try:
                payload = json.loads(raw)
            except ValueError:
                raise GraphError(100, "The request body is not valid JSON.") from None
            validate_message(payload, self.config)
            fault = self._draw_fault()
            asynchronous_error: GraphError | None = None
            accepted_then_hang = False
            if fault is not None:
                kind, is_async = fault
                if kind == "429":
                    raise GraphError(130429)
                if kind == "5xx":
                    raise GraphError(2)
                if kind == "timeout":
                    await self._hang()
                    return web.Response(status=504, text="Gateway Timeout")
                if kind == "timeout_accepted":
                    accepted_then_hang = True
                elif kind == "131047_async":
                    asynchronous_error = GraphError(131047)
                elif isinstance(kind, int) or str(kind).isdigit():
                    error = GraphError(int(kind))
                    if not is_async:
                        raise error
                    asynchronous_error = error
            to = payload.get("to") or payload.get("recipient")
            to_key = normalize_phone(to) if payload.get("to") else to
            self._check_rates(to_key, request.match_info["phone_id"])
            kind = payload.get("type", "text")
            if self.config.strict_media and kind in MEDIA_TYPES:
                media_id = payload[kind].get("id")
                if media_id is not None and media_id not in self._media:
                    raise GraphError(131053, "Media id is not valid or has expired.")
            if (
                self.config.enforce_window
                and kind != "template"
                and asynchronous_error is None
                and not self._window_open(to_key)
            ):
                if self.config.window_sync:
                    raise GraphError(131047)
                asynchronous_error = GraphError(131047)
        except GraphError as error:
            return self._error(error)

        message_id = self._new_message_id()
        entry = AcceptedMessage(
            seq=next(self._seq),
            message_id=message_id,
            phone_number_id=request.match_info["phone_id"],
            to=to_key,
            type=kind,
            body_sha256=body_hash(payload),
            reference=payload.get("biz_opaque_callback_data"),
            template=payload["template"]["name"] if kind == "template" else None,
            received_at=time.time(),
            payload=payload,
        )
        self.log.append(entry)
        self._schedule_statuses(entry, asynchronous_error)
        contact = (
            {"input": to, "wa_id": to_key} if payload.get("to") else {"input": to, "user_id": to}
        )
        response = {
            "messaging_product": "whatsapp",
            "contacts": [contact],
            "messages": [{"id": message_id, "message_status": "accepted"}],
        }
        if accepted_then_hang:
            await self._hang()
        return self._json(response)

    async def _handle_media_upload(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request)
            self._check_phone(request.match_info["phone_id"])
            try:
                form = await request.post()
            except ValueError:
                raise GraphError(100, "The request must be multipart/form-data.") from None
            if form.get("messaging_product") != "whatsapp":
                raise GraphError(131008, "The parameter messaging_product is required.")
            upload = form.get("file")
            if not isinstance(upload, web.FileField):
                raise GraphError(131008, "The parameter file is required.")
            mime = form.get("type")
            if not isinstance(mime, str) or not mime:
                raise GraphError(131008, "The parameter type is required.")
            data = upload.file.read()
        except GraphError as error:
            return self._error(error)
        media_id = str(10**15 + next(self._seq))
        self._media[media_id] = {
            "mime_type": mime,
            "sha256": hashlib.sha256(data).hexdigest(),
            "file_size": len(data),
            "data": data,
        }
        return self._json({"id": media_id})

    async def _handle_media_info(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request)
            media_id = request.match_info["media_id"]
            media = self._media.get(media_id)
            if media is None:
                raise GraphError(100, f"Object with ID '{media_id}' does not exist.", subcode=33)
        except GraphError as error:
            return self._error(error)
        return self._json(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/_fake/media/{media_id}",
                "mime_type": media["mime_type"],
                "sha256": media["sha256"],
                "file_size": media["file_size"],
                "id": media_id,
            }
        )

    async def _handle_media_download(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request)
        except GraphError as error:
            return self._error(error)
        media = self._media.get(request.match_info["media_id"])
        if media is None:
            return web.Response(status=404)
        return web.Response(body=media["data"], content_type=media["mime_type"])

    async def _handle_stats(self, request: web.Request) -> web.Response:
        """Not Meta's: lets a benchmark in another process check exactly-once and rates."""
        stats = self.webhook_stats
        return self._json(
            {
                "accepted": len(self.log),
                "duplicate_references": len(self.log.duplicate_references()),
                "duplicate_contents": len(self.log.duplicate_contents()),
                "max_rate_1s": self.log.max_rate(1.0),
                "webhooks": dataclasses.asdict(stats),
            }
        )

    # -- webhooks --------------------------------------------------------------------------------

    def _later(self, delay_s: float, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` after `delay_s` seconds, tracked so that `wait_idle` and `stop` see it."""

        async def run() -> None:
            try:
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            except asyncio.CancelledError:
                coro.close()  # never started: close it quietly
                raise
            await coro

        task = asyncio.ensure_future(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _status(
        self, entry: AcceptedMessage, status: str, at: float, error: GraphError | None = None
    ) -> dict[str, Any]:
        payload = entry.payload
        body: dict[str, Any] = {"id": entry.message_id, "status": status, "timestamp": str(int(at))}
        if payload.get("to"):
            body["recipient_id"] = entry.to
        else:
            body["recipient_user_id"] = entry.to
        if entry.reference is not None:
            body["biz_opaque_callback_data"] = entry.reference
        if error is not None:
            body["errors"] = [error.status_error()]
            return body
        if status in ("sent", "delivered"):
            if entry.type == "template":
                spec = (self.config.templates or {}).get(entry.template or "")
                category = spec.category if spec else self.config.default_template_category
                billable, price_type = True, "regular"
            else:
                category, billable, price_type = "service", False, "free_customer_service"
            conversation: dict[str, Any] = {
                "id": hashlib.sha1(  # noqa: S324 - an opaque id, not security
                    f"{entry.to}:{category}:{int(at // 86400)}".encode()
                ).hexdigest(),
                "origin": {"type": category},
            }
            if status == "sent":
                conversation["expiration_timestamp"] = str(int(at) + 86400)
            body["conversation"] = conversation
            body["pricing"] = {
                "billable": billable,
                "pricing_model": "PMP",
                "category": category,
                "type": price_type,
            }
        return body

    def _schedule_statuses(self, entry: AcceptedMessage, error: GraphError | None) -> None:
        if self._queue is None:
            return
        now = self.config.clock()
        step = self.config.status_delay_ms / 1000.0
        if error is not None:
            failed = self._status(entry, "failed", now + step, error)
            if self.config.webhook_url:
                self._later(step, self._enqueue("status", failed))
            return
        sequence = list(self.config.statuses)
        if "delivered" in sequence and self.rng.random() < self.config.skip_delivered_probability:
            sequence.remove("delivered")
        if "read" in sequence and self.rng.random() >= self.config.read_probability:
            sequence = sequence[: sequence.index("read")]
        if (
            "read" in sequence
            and entry.type == "audio"
            and entry.payload.get("audio", {}).get("voice")
        ):
            sequence.append("played")
        if self.config.webhook_url:
            for index, name in enumerate(sequence):
                status = self._status(entry, name, now + index * step)
                delay = index * step
                if delay <= 0:
                    self._enqueue_nowait("status", status)
                else:
                    self._later(delay, self._enqueue("status", status))
        if self.config.reply_probability > 0 and self.rng.random() < self.config.reply_probability:
            replies = self._replies_for(entry)
            if replies:
                delay = self.config.reply_delay_ms / 1000.0 + len(sequence) * step
                for body in replies:
                    message_id = self._new_message_id()
                    by_phone = bool(entry.payload.get("to"))
                    self._later(
                        delay,
                        self._queue_inbound(
                            entry.to if by_phone else None,
                            body,
                            "Participante",
                            None if by_phone else entry.to,
                            entry.message_id,
                            message_id,
                        ),
                    )

    def _replies_for(self, entry: AcceptedMessage) -> list[dict[str, Any]]:
        if self.config.responder is not None:
            return self.config.responder(entry) or []
        payload = entry.payload
        if entry.type == "interactive":
            interactive = payload["interactive"]
            action = interactive.get("action", {})
            if interactive.get("type") == "button":
                reply = self.rng.choice(action["buttons"])["reply"]
                return [
                    {
                        "type": "interactive",
                        "interactive": {
                            "type": "button_reply",
                            "button_reply": {"id": reply["id"], "title": reply["title"]},
                        },
                    }
                ]
            if interactive.get("type") == "list":
                rows = [row for section in action["sections"] for row in section["rows"]]
                row = self.rng.choice(rows)
                list_reply = {"id": row["id"], "title": row["title"]}
                if "description" in row:
                    list_reply["description"] = row["description"]
                return [
                    {
                        "type": "interactive",
                        "interactive": {"type": "list_reply", "list_reply": list_reply},
                    }
                ]
        if entry.type == "template":
            buttons = [
                c
                for c in payload["template"].get("components", [])
                if isinstance(c, dict) and c.get("sub_type") == "quick_reply"
            ]
            if buttons:
                chosen = self.rng.choice(buttons)
                spec = (self.config.templates or {}).get(entry.template or "")
                index = int(chosen.get("index", 0))
                title = spec.buttons[index] if spec and index < len(spec.buttons) else "OK"
                button_payload = chosen["parameters"][0].get("payload", "")
                return [{"type": "button", "button": {"payload": button_payload, "text": title}}]
        return [{"type": "text", "text": {"body": self.rng.choice(self.config.reply_texts)}}]

    async def _queue_inbound(
        self,
        sender: str | None,
        body: dict[str, Any],
        name: str,
        user_id: str | None,
        context_id: str | None,
        message_id: str,
    ) -> None:
        message: dict[str, Any] = {}
        contact: dict[str, Any] = {"profile": {"name": name}}
        if sender:
            wa_id = normalize_phone(sender)
            message["from"] = wa_id
            contact["wa_id"] = wa_id
            self.open_window(wa_id)
        if user_id:
            message["from_user_id"] = user_id
            contact["user_id"] = user_id
            self.open_window(user_id)
        message["id"] = message_id
        message["timestamp"] = str(int(self.config.clock()))
        if context_id:
            message["context"] = {"from": self.config.display_phone_number, "id": context_id}
        message.update(body)
        if self.config.webhook_url:
            await self._enqueue("inbound", {"contact": contact, "message": message})

    async def _enqueue(self, kind: str, item: dict[str, Any]) -> None:
        self._enqueue_nowait(kind, item)

    def _enqueue_nowait(self, kind: str, item: dict[str, Any]) -> None:
        if self._queue is not None and self.config.webhook_url:
            self._queue.put_nowait((kind, item))

    async def _idle(self) -> bool:
        queue_empty = self._queue is None or self._queue.empty()
        return queue_empty and not self._pending and self._busy == 0

    def _envelope(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        metadata = {
            "display_phone_number": self.config.display_phone_number,
            "phone_number_id": self.config.phone_number_id,
        }
        changes = []
        statuses = [item for kind, item in items if kind == "status"]
        if statuses:
            value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": statuses}
            changes.append({"value": value, "field": "messages"})
        for kind, item in items:
            if kind == "inbound":
                value = {
                    "messaging_product": "whatsapp",
                    "metadata": metadata,
                    "contacts": [item["contact"]],
                    "messages": [item["message"]],
                }
                changes.append({"value": value, "field": "messages"})
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.config.waba_id, "changes": changes}],
        }

    async def _webhook_worker(self) -> None:
        assert self._queue is not None
        linger = self.config.status_linger_ms / 1000.0
        while True:
            first = await self._queue.get()
            self._busy += 1
            try:
                batch = [first]
                deadline = time.monotonic() + linger
                while len(batch) < max(1, self.config.status_batch):
                    try:
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                body = json.dumps(self._envelope(batch), ensure_ascii=False).encode()
                await self._post_webhook(body, len(batch))
                if self.rng.random() < self.config.duplicate_webhook_probability:
                    self.webhook_stats.duplicates += 1
                    await self._post_webhook(body, len(batch))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must survive one bad delivery
                logger.exception("fake WhatsApp: webhook batch failed")
            finally:
                self._busy -= 1

    async def _post_webhook(self, body: bytes, events: int) -> None:
        assert self._session is not None and self.config.webhook_url
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.config.app_secret),
            "User-Agent": "facebookexternalua",
        }
        for attempt in range(self.config.webhook_retries + 1):
            try:
                async with self._session.post(
                    self.config.webhook_url, data=body, headers=headers
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.webhook_stats.posts += 1
                        self.webhook_stats.events += events
                        return
            except (OSError, TimeoutError, Exception) as exc:  # noqa: BLE001
                logger.debug("fake WhatsApp: webhook delivery failed: %s", type(exc).__name__)
            self.webhook_stats.failures += 1
            if attempt < self.config.webhook_retries:
                await asyncio.sleep(min(5.0, 0.05 * 2**attempt))


@contextlib.contextmanager
def run_fake_whatsapp(config: FakeConfig | None = None, **overrides: Any) -> Iterator[FakeWhatsApp]:
    """Start the fake on 127.0.0.1 on a free port in a background thread; stop it on exit.

    Yields the FakeWhatsApp: `.base_url`, `.phone_number_id`, `.log`, `.force(...)`,
    `.send_inbound(...)`, `.wait_idle()`."""
    fake = FakeWhatsApp(config, **overrides)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
