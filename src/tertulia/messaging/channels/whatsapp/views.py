"""The Cloud API webhook: `/webhooks/whatsapp/<name>/`.

GET answers Meta's verification handshake. POST checks `X-Hub-Signature-256` (401 when it is
missing, 403 when it is wrong), stores the raw body as an encrypted WebhookEvent in one
committed INSERT and answers 200; workers claim stored events and process them
(handoff.py). Meta wants an answer within seconds and retries for days otherwise, so a POST
does nothing it does not need: no queue, and no session, locale or CSRF middleware
(messaging.middleware). Nothing here logs bodies, numbers or secrets."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tertulia.core import clock
from tertulia.messaging.models import ChannelConfig

from .handoff import webhook_event_store
from .signature import SIGNATURE_HEADER, SignatureCheck, check, handshake

logger = logging.getLogger(__name__)
MESSAGES_KEY = re.compile(rb'"messages"\s*:')
# How long a worker process trusts the channel it read (its secret decrypted once, not per
# POST). A wrong signature reads it again before refusing, so a new secret counts at once.
CONFIG_SECONDS = 30.0


@dataclass(frozen=True)
class _Signer:
    channel: str
    app_secret: bytes


_signers: dict[str, tuple[float, _Signer]] = {}


def _signer(name: str, *, fresh: bool = False) -> _Signer | None:
    cached = _signers.get(name)
    if cached is not None and not fresh and time.monotonic() - cached[0] < CONFIG_SECONDS:
        return cached[1]
    config = ChannelConfig.objects.filter(name=name).only("name", "app_secret").first()
    if config is None:
        _signers.pop(name, None)
        return None
    signer = _Signer(channel=config.channel, app_secret=config.app_secret.encode())
    _signers[name] = (time.monotonic(), signer)
    return signer


@receiver([post_save, post_delete], sender=ChannelConfig)
def _forget_signer(sender: type[ChannelConfig], instance: ChannelConfig, **kwargs: object) -> None:
    _signers.pop(instance.name, None)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "GET":
        config = ChannelConfig.objects.filter(name=name).first()
        if config is None:
            return HttpResponse(status=404)
        challenge = handshake(request.GET.dict(), config.verify_token)
        if challenge is None:
            return HttpResponse(status=403)
        return HttpResponse(challenge, content_type="text/plain")

    return HttpResponse(
        status=webhook_receive(name, request.body, request.headers.get(SIGNATURE_HEADER))
    )


def webhook_receive(name: str, body: bytes, signature: str | None) -> int:
    """Check and store one POSTed body for channel `name`; returns the HTTP status to answer:
    200 once stored, 401 without a signature, 403 with a wrong one, 404 for no such channel.
    The view and the WSGI fast path (tertulia.wsgi) both answer with it."""
    signer = _signer(name)
    if signer is None:
        return 404
    result = check(body, signature, signer.app_secret)
    if result is SignatureCheck.INVALID:
        # Perhaps the secret changed since this process read it.
        signer = _signer(name, fresh=True)
        if signer is None:
            return 404
        result = check(body, signature, signer.app_secret)
    if result is SignatureCheck.MISSING:
        logger.warning("webhook %s: POST without a signature refused", signer.channel)
        return 401
    if result is not SignatureCheck.VALID:
        logger.warning("webhook %s: POST with a wrong signature refused", signer.channel)
        return 403
    webhook_event_store(
        channel=signer.channel,
        body=body.decode("utf-8", errors="replace"),
        received_at=clock.now(),
        # A cheap test for a "messages" array (as opposed to the change's field name
        # "messages"): a body with a man's message is processed before delivery statuses; a
        # false positive only costs priority.
        has_messages=MESSAGES_KEY.search(body) is not None,
    )
    return 200
