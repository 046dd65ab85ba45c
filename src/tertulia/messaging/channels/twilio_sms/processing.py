"""Applying Twilio's webhooks: an incoming SMS becomes a Message once and is routed like any
other channel's; a status callback moves its Message forward. Nothing here logs bodies or
numbers.

The views store each signed request as a WebhookEvent (`twilio_event_body`: which webhook, its
form parameters and our reference) and answer; workers claim stored events like WhatsApp's
(whatsapp/handoff.py, decision 0090) and apply them here (`twilio_event_process`). A request
Twilio delivers twice is stored twice and applied once: the SMS by its MessageSid, statuses
by never moving a message backwards.

Statuses: queued, accepted, scheduled and sending mean Twilio has it; sent is already what the
sender recorded; delivered; undelivered (the carrier gave up: Twilio still bills it) and failed
(never sent: not billed), both with an ErrorCode."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from tertulia.core import clock
from tertulia.messaging.models import Message, TwilioConfig, WebhookEvent
from tertulia.messaging.services import Inbound, message_receive, message_status_update

from ..whatsapp.errors import Action
from .channel import twilio_pause
from .client import twilio_action_for

logger = logging.getLogger(__name__)

FAILED = ("undelivered", "failed")
# The two webhooks, as a stored event names them.
SMS = "sms"
STATUS = "status"
KINDS = (SMS, STATUS)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 6 else None


def sms_receive(config: TwilioConfig, params: Mapping[str, str], *, now: dt.datetime) -> bool:
    """Store one incoming SMS (once, by its MessageSid) and have it routed. Returns whether it
    is new; False also when the request names no message."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    sender = params.get("From", "")
    if not sid or not sender:
        logger.warning("Twilio %s: inbound without MessageSid or From ignored", config.channel)
        return False
    num_media = _int(params.get("NumMedia")) or 0
    payload: dict[str, object] = {"sms": True}
    if num_media:
        payload["num_media"] = num_media
    _message, created = message_receive(
        Inbound(
            channel=config.channel,
            address=sender,
            provider_id=sid,
            received_at=now,
            kind="text" if not num_media else "mms",
            text=params.get("Body", ""),
            payload=payload,
            segments=_int(params.get("NumSegments")),
        ),
        now=now,
    )
    return created


def sms_status_apply(
    config: TwilioConfig, params: Mapping[str, str], *, reference: str, now: dt.datetime
) -> str:
    """Apply one status callback; returns the status applied ('' when there was nothing to
    do). `reference` is the Message id our callback URL carried."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not sid or not status:
        return ""
    outbound = Message.objects.filter(channel=config.channel, direction=Message.Direction.OUT)
    if reference.isdigit():
        # A send whose answer we never got (a timeout): Twilio's id reaches us here.
        outbound.filter(pk=int(reference), provider_id="").update(
            provider_id=sid, status=Message.Status.SENT, sent_at=now
        )
    error_code = params.get("ErrorCode", "") or ""
    if status == "delivered":
        message_status_update(channel=config.channel, provider_id=sid, status="delivered", at=now)
    elif status in FAILED:
        message_status_update(
            channel=config.channel,
            provider_id=sid,
            status="failed",
            at=now,
            error_code=error_code[:20],
        )
        if status == "failed":
            outbound.filter(provider_id=sid).update(billable=False)
        code = _int(error_code)
        if twilio_action_for(code) is Action.PAUSE_CHANNEL:
            twilio_pause(config, f"status callback error {code}")
    elif status == "read":
        message_status_update(channel=config.channel, provider_id=sid, status="read", at=now)
    else:
        return ""
    return status


def twilio_event_body(kind: str, params: Mapping[str, str], reference: str = "") -> str:
    """What a Twilio webhook's event stores: which webhook (`SMS` or `STATUS`), the form it
    posted (one value a name) and the reference our status callback URL carried."""
    if kind not in KINDS:
        raise ValueError(f"not a Twilio webhook: {kind!r}")
    return json.dumps(
        {"twilio": kind, "params": dict(params), "reference": reference}, ensure_ascii=False
    )


def _event_parse(body: str) -> tuple[str, dict[str, str], str] | None:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("twilio") not in KINDS:
        return None
    params = data.get("params")
    if not isinstance(params, dict):
        return None
    return (
        str(data["twilio"]),
        {str(k): str(v) for k, v in params.items()},
        str(data.get("reference") or ""),
    )


def twilio_event_process(event_id: int, *, route_inline: bool = True) -> dict[str, int]:
    """Apply one stored Twilio webhook (claimed by a worker): an incoming SMS is stored once
    and handed to routing, a status moves its message. Idempotent: a processed event is
    skipped, and every write dedupes. The times are the request's, not the processing's.
    `route_inline` is accepted for the hand-off's sake: an SMS is routed by a routing task."""
    event = WebhookEvent.objects.filter(pk=event_id).first()
    if event is None or event.processed_at is not None:
        return {"inbound": 0, "statuses": 0}
    now = clock.now()
    problems: list[str] = []
    counts = {"inbound": 0, "statuses": 0}
    parsed = _event_parse(event.body)
    config = TwilioConfig.objects.filter(name=event.channel.partition(":")[2]).first()
    if parsed is None:
        problems.append("not a stored Twilio webhook")
    elif config is None:
        problems.append(f"no Twilio channel is configured for '{event.channel}'")
    else:
        kind, params, reference = parsed
        if kind == SMS:
            counts["inbound"] = int(sms_receive(config, params, now=event.received_at))
        else:
            counts["statuses"] = int(
                bool(sms_status_apply(config, params, reference=reference, now=event.received_at))
            )
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=now, problems=problems)
    if problems:
        logger.warning("webhook event %s on %s: %s", event.pk, event.channel, problems[0])
    return counts
