"""Her name and number do not stay in the raw webhook bodies (decision 0082).

The WhatsApp and Twilio webhook views store every POST's raw body (encrypted, never pruned)
before it is processed, so the man's answers at the partner-contact steps would stay there
after her contact has gone to its own store and his message has been redacted (an SMS
recruitment is possible where the program recruits everyone who writes). Each such body is
rewritten with the same redaction: at once, when the answer is taken (the bodies received
around his message on his channel), and by a sweep (`tertulia recruit redact-webhooks`) for
the providers' re-deliveries, which can come days later, and for bodies stored before this
existed.

A rewritten body no longer matches the signature it was received with; `signature_ok` keeps
what was checked on arrival.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable
from typing import Any

from django.db.models import Q

from tertulia.messaging.models import Message, WebhookEvent
from tertulia.recruitment import flow
from tertulia.recruitment.models import ScreeningAnswer

# How far a webhook's receipt may be from the time stamped on his message (Meta stamps when he
# sent it; a first delivery comes within seconds). Later re-deliveries are the sweep's.
BEFORE = dt.timedelta(minutes=2)
AFTER = dt.timedelta(minutes=10)
PARTNER_STEPS = (flow.PARTNER_NAME, flow.PARTNER_PHONE)
# The channels whose webhook views store raw bodies: WhatsApp's envelopes, Twilio's forms.
CHANNELS = ("whatsapp:", "twilio:")


def _on_stored_channels(field: str) -> Q:
    return Q(**{f"{field}__startswith": CHANNELS[0]}) | Q(**{f"{field}__startswith": CHANNELS[1]})


def body_redact(body: str, provider_ids: Collection[str], replacement: str) -> str | None:
    """The body with the text of the messages `provider_ids` replaced, or None when it holds
    none of them (or is not JSON)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    changed = False
    for message in _messages(data):
        if message.get("id") in provider_ids and isinstance(message.get("text"), dict):
            if message["text"].get("body") != replacement:
                message["text"]["body"] = replacement
                changed = True
    sms = _sms(data)
    if sms is not None and sms.get("MessageSid") in provider_ids:
        if sms.get("Body") != replacement:
            sms["Body"] = replacement
            changed = True
    return json.dumps(data, ensure_ascii=False) if changed else None


def _sms(data: Any) -> dict[str, Any] | None:
    """The form of an incoming SMS as a Twilio webhook event stores it (twilio_event_body)."""
    if not isinstance(data, dict) or data.get("twilio") != "sms":
        return None
    params = data.get("params")
    return params if isinstance(params, dict) else None


def _messages(data: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(data, dict):
        return
    for entry in data.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            for message in ((change or {}).get("value") or {}).get("messages") or []:
                if isinstance(message, dict):
                    yield message


def _redact_events(
    events: Iterable[WebhookEvent], replacements: dict[str, str], *, first_only: bool = False
) -> int:
    """Rewrite the bodies of `events` that carry any of the messages in `replacements`
    (provider id → its redacted text); with `first_only`, stop at the first. Returns how many
    bodies were rewritten."""
    rewritten = 0
    by_text: dict[str, set[str]] = {}
    for provider_id, text in replacements.items():
        by_text.setdefault(text, set()).add(provider_id)
    for event in events:
        body = event.body
        for text, ids in by_text.items():
            body = body_redact(body, ids, text) or body
        if body != event.body:
            WebhookEvent.objects.filter(pk=event.pk).update(body=body)
            rewritten += 1
            if first_only:
                break
    return rewritten


def webhook_bodies_redact(*, message: Message, replacement: str) -> int:
    """At once, when his answer at a partner-contact step has been redacted: the body that
    brought it, among those received on his channel around the time of his message. Newest
    first, stopping at the first found: his message is routed moments after its body is
    processed, so few bodies are read (a duplicate delivery is left to the sweep)."""
    if not message.channel.startswith(CHANNELS) or not message.provider_id:
        return 0
    events = WebhookEvent.objects.filter(
        channel=message.channel,
        received_at__gte=message.created_at - BEFORE,
        received_at__lte=message.created_at + AFTER,
    ).order_by("-id")
    return _redact_events(
        events.iterator(chunk_size=50), {message.provider_id: replacement}, first_only=True
    )


def partner_answers_redact_webhooks(*, since: dt.datetime | None = None) -> tuple[int, int]:
    """The sweep: every stored body (received since `since`, or all) still carrying an answer
    given at a partner-contact step. Returns (bodies read, bodies rewritten)."""
    answers = ScreeningAnswer.objects.filter(question__in=PARTNER_STEPS).exclude(message=None)
    messages = Message.objects.filter(
        _on_stored_channels("channel"), pk__in=answers.values("message_id")
    ).exclude(provider_id="")
    replacements = {m.provider_id: m.body for m in messages.only("provider_id", "body")}
    if not replacements:
        return 0, 0
    events = WebhookEvent.objects.filter(_on_stored_channels("channel")).order_by("id")
    if since is not None:
        events = events.filter(received_at__gte=since)
    read = events.count()
    return read, _redact_events(events.iterator(chunk_size=200), replacements)
