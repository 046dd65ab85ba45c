"""Applying Twilio's webhooks: an incoming SMS becomes a Message once and is routed like any
other channel's; a status callback moves its Message forward. Nothing here logs bodies or
numbers.

Statuses: queued, accepted, scheduled and sending mean Twilio has it; sent is already what the
sender recorded; delivered; undelivered (the carrier gave up: Twilio still bills it) and failed
(never sent: not billed), both with an ErrorCode."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from tertulia.messaging.models import Message, TwilioConfig
from tertulia.messaging.services import Inbound, message_receive, message_status_update

from ..whatsapp.errors import Action
from .channel import twilio_pause
from .client import twilio_action_for

logger = logging.getLogger(__name__)

FAILED = ("undelivered", "failed")


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
