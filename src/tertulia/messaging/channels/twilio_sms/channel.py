"""Twilio SMS as a tertulia Channel (kind "twilio").

A cohort names its channel `twilio:<name>`; `<name>` is a TwilioConfig row, found from the
Message rows of the batch (the sender groups a batch by channel). SMS carries text only: a
check-in's buttons become the answers he can type, a media step sends its caption. Each accepted SMS
records its segments and its pricing ("sms", billable) on the Message, for cost estimates.

Errors come from the client's action table: retryable ones are ordinary ChannelErrors,
undeliverable and unknown ones permanent, pause-the-channel ones pause the TwilioConfig, and a
request that may have reached Twilio is `maybe_accepted`: Twilio has no idempotency key, so it
is never re-sent blindly. Its status callback URL names our Message, which lets the callback
attach Twilio's id to it, and `reconcile` reads that.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence

from django.urls import reverse
from django.utils import timezone

from tertulia.messaging.channel import (
    ChannelError,
    NotYetKnown,
    Outbound,
    SendResult,
    batch_channel,
)
from tertulia.messaging.models import Message, TwilioConfig
from tertulia.messaging.ratelimit import Pacer

from ..whatsapp.errors import Action
from .client import TwilioSMSClient, TwilioSMSError

logger = logging.getLogger(__name__)

KIND = "twilio"
SEND_TIMEOUT = 10.0
PRICING_CATEGORY = "sms"
# Twilio refuses longer bodies (error 21617): a permanent error, found before the request.
BODY_LIMIT = 1600


class MaybeAcceptedError(ChannelError):
    """Twilio may have accepted the SMS although we got no answer: never re-send it blindly."""

    maybe_accepted = True


def channel_name(channel: str) -> str:
    """'twilio:peru' -> 'peru'."""
    prefix, _, name = channel.partition(":")
    if prefix != KIND or not name:
        raise ChannelError(f"not a Twilio channel: '{channel}'", permanent=True)
    return name


def config_for(channel: str) -> TwilioConfig:
    config = TwilioConfig.objects.filter(name=channel_name(channel)).first()
    if config is None:
        raise ChannelError(f"no Twilio channel is configured for '{channel}'", permanent=True)
    return config


def twilio_pause(config: TwilioConfig, reason: str) -> None:
    """Stop sending on a channel until staff resume it (bad credentials, suspended account)."""
    updated = TwilioConfig.objects.filter(pk=config.pk, paused=False).update(
        paused=True, paused_reason=reason[:300], paused_at=timezone.now()
    )
    if updated:
        logger.error("Twilio channel %s paused: %s", config.channel, reason[:300])


_clients: dict[tuple[str, ...], TwilioSMSClient] = {}
_clients_lock = threading.Lock()


def client_for(config: TwilioConfig) -> TwilioSMSClient:
    token_hash = hashlib.sha256(config.auth_token.encode()).hexdigest()
    key = (
        config.name,
        config.account_sid,
        config.from_number,
        config.messaging_service_sid,
        config.base_url,
        token_hash,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            for old_key in [k for k in _clients if k[0] == config.name]:
                del _clients[old_key]
            client = TwilioSMSClient(
                account_sid=config.account_sid,
                auth_token=config.auth_token,
                from_number=config.from_number or None,
                messaging_service_sid=config.messaging_service_sid or None,
                base_url=config.base_url,
                timeout=SEND_TIMEOUT,
            )
            _clients[key] = client
        return client


def rate_bucket(config: TwilioConfig) -> str:
    """The shared rate bucket of a Twilio sender: its messaging service, else its number."""
    return f"twilio:{config.account_sid}:{config.messaging_service_sid or config.from_number}"


def status_callback_url(config: TwilioConfig, message_id: int) -> str | None:
    if not config.public_url:
        return None
    path = reverse("twilio-status", args=[config.name])
    return f"{config.public_url.rstrip('/')}{path}?m={message_id}"


def sms_text(outbound: Outbound) -> str:
    """The SMS body for an Outbound: text only."""
    if outbound.kind == "buttons":
        # The router takes a typed answer that matches a button's title, so list the titles.
        titles = " / ".join(b["title"] for b in outbound.buttons)
        return f"{outbound.text}\nResponde: {titles}".strip() if titles else outbound.text
    if outbound.kind in ("audio", "video", "image", "document"):
        return outbound.caption
    return outbound.text


def error_for(error: TwilioSMSError, config: TwilioConfig) -> ChannelError:
    code = str(error.code) if error.code is not None else f"http{error.http_status or ''}"
    if error.maybe_accepted:
        return MaybeAcceptedError(str(error), code=code)
    if error.action is Action.RETRY:
        return ChannelError(str(error), code=code)
    if error.action is Action.PAUSE_CHANNEL:
        twilio_pause(config, str(error))
        return ChannelError(str(error), code=code)
    return ChannelError(str(error), code=code, permanent=True)


class TwilioSMSChannel:
    kind = KIND

    def send_many(self, outbounds: Sequence[Outbound]) -> list[SendResult | ChannelError]:
        if not outbounds:
            return []
        config = config_for(batch_channel(outbounds, "Twilio"))
        if config.paused:
            return [ChannelError(f"channel {config.channel} is paused")] * len(outbounds)
        client = client_for(config)
        results: list[SendResult | ChannelError | None] = [None] * len(outbounds)
        texts: dict[int, str] = {}
        for index, outbound in enumerate(outbounds):
            text = sms_text(outbound)
            if not text.strip():
                results[index] = ChannelError(
                    f"an SMS cannot carry {outbound.kind} without a caption", permanent=True
                )
            elif len(text) > BODY_LIMIT:
                results[index] = ChannelError(
                    f"text of {len(text)} characters; an SMS takes at most {BODY_LIMIT}",
                    permanent=True,
                )
            else:
                texts[index] = text
        # The sender's rate, shared with every process sending on it (ratelimit.py).
        pacer = Pacer(rate_bucket(config), config.messages_per_second, len(texts))
        by_segments: dict[int | None, list[int]] = defaultdict(list)
        for index, text in texts.items():
            outbound = outbounds[index]
            if config.paused:  # paused by an earlier message of this batch
                results[index] = ChannelError(f"channel {config.channel} is paused")
                continue
            try:
                pacer.wait()
            except ChannelError as exc:  # the shared limiter is unreachable: nothing left
                results[index] = exc
                continue
            try:
                sent = client.send(
                    outbound.to,
                    text,
                    status_callback=status_callback_url(config, outbound.message_id),
                )
            except TwilioSMSError as exc:
                results[index] = error_for(exc, config)
                if exc.action is Action.PAUSE_CHANNEL:
                    config.paused = True
                continue
            results[index] = SendResult(provider_id=sent.sid)
            by_segments[sent.num_segments].append(outbound.message_id)
        # The sender writes the provider ids; the segments and pricing are ours to record.
        for segments, ids in by_segments.items():
            Message.objects.filter(pk__in=ids).update(
                segments=segments, pricing_category=PRICING_CATEGORY, billable=True
            )
        return [r if r is not None else ChannelError("not sent") for r in results]

    def reconcile(self, message_id: int) -> str | None:
        """Twilio keeps no reference of ours, but its status callback URL carries our Message
        id: a provider id found, once the stored callbacks are applied (through the claim, as
        a worker would), means Twilio accepted it. Otherwise we cannot tell; not yet, while
        a callback stored since the send is still being applied by another worker."""
        from ..whatsapp.handoff import webhook_events_process_pending, webhook_events_unprocessed

        message = Message.objects.filter(pk=message_id).only("provider_id", "channel").first()
        if message is None:
            return None
        if not message.provider_id:
            webhook_events_process_pending(channel=message.channel)
            message.refresh_from_db(fields=["provider_id"])
        if message.provider_id:
            return message.provider_id
        if webhook_events_unprocessed(channel=message.channel, since=message.created_at):
            raise NotYetKnown("Twilio's callbacks are still being applied: ask again")
        raise ChannelError("no status from Twilio: cannot tell whether it accepted the SMS")
