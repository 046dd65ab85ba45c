"""The Cloud API webhook: `/webhooks/whatsapp/<name>/`.

GET answers Meta's verification handshake. POST checks `X-Hub-Signature-256` (401 when it is
missing, 403 when it is wrong), stores the raw body as an encrypted WebhookEvent, answers 200
and leaves the work to `process_webhook_task`: Meta wants an answer within seconds and retries
for days otherwise. Nothing here logs bodies, numbers or secrets."""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tertulia.core import clock
from tertulia.messaging.models import ChannelConfig, WebhookEvent

from .signature import SIGNATURE_HEADER, SignatureCheck, check, handshake

logger = logging.getLogger(__name__)
MESSAGES_KEY = re.compile(rb'"messages"\s*:')


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest, name: str) -> HttpResponse:
    config = ChannelConfig.objects.filter(name=name).first()
    if config is None:
        return HttpResponse(status=404)
    if request.method == "GET":
        challenge = handshake(request.GET.dict(), config.verify_token)
        if challenge is None:
            return HttpResponse(status=403)
        return HttpResponse(challenge, content_type="text/plain")

    body = request.body
    result = check(body, request.headers.get(SIGNATURE_HEADER), config.app_secret)
    if result is SignatureCheck.MISSING:
        logger.warning("webhook %s: POST without a signature refused", config.channel)
        return HttpResponse(status=401)
    if result is not SignatureCheck.VALID:
        logger.warning("webhook %s: POST with a wrong signature refused", config.channel)
        return HttpResponse(status=403)
    event = WebhookEvent.objects.create(
        channel=config.channel,
        body=body.decode("utf-8", errors="replace"),
        received_at=clock.now(),
        signature_ok=True,
    )
    try:
        from tertulia.messaging.tasks import person_waiting

        from .tasks import process_webhook_task

        # A body with a man's message goes before the flood of delivery statuses (a cheap
        # test for a "messages" array, as opposed to the change's field name "messages"; a
        # false positive only costs priority).
        task = process_webhook_task
        if MESSAGES_KEY.search(body):
            task = task.using(priority=person_waiting())
        task.enqueue(event.pk)
    except Exception:  # noqa: BLE001 - the event is stored; the pending sweep will process it
        logger.exception("webhook %s: could not enqueue event %s", config.channel, event.pk)
    return HttpResponse(status=200)
