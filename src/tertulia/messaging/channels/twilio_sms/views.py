"""Twilio's webhooks: `/webhooks/twilio/<name>/sms/` (an incoming SMS) and
`/webhooks/twilio/<name>/status/` (a delivery status).

Both check `X-Twilio-Signature` over the URL Twilio called and the posted form: 403 when it is
missing or wrong, before anything is stored. An incoming SMS is written as a Message (once, by
its MessageSid) before the answer, and routed in the background like every channel's; the
answer is an empty TwiML document, since replies go out through the Outbox. Behind a proxy,
Django must know the public scheme and host (SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST)
for the URL to match the one Twilio signed."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tertulia.core import clock
from tertulia.messaging.models import TwilioConfig

from .processing import sms_receive, sms_status_apply
from .signature import SIGNATURE_HEADER, verify

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed_config(request: HttpRequest, name: str) -> TwilioConfig | HttpResponse:
    config = TwilioConfig.objects.filter(name=name).first()
    if config is None:
        return HttpResponse(status=404)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not verify(request.build_absolute_uri(), request.POST.dict(), signature, config.auth_token):
        logger.warning(
            "Twilio webhook %s: %s signature refused",
            config.channel,
            "missing" if not signature else "wrong",
        )
        return HttpResponse(status=403)
    return config


@csrf_exempt
@require_POST
def twilio_sms_webhook(request: HttpRequest, name: str) -> HttpResponse:
    config = _signed_config(request, name)
    if isinstance(config, HttpResponse):
        return config
    sms_receive(config, request.POST.dict(), now=clock.now())
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_status_webhook(request: HttpRequest, name: str) -> HttpResponse:
    config = _signed_config(request, name)
    if isinstance(config, HttpResponse):
        return config
    sms_status_apply(
        config, request.POST.dict(), reference=request.GET.get("m", ""), now=clock.now()
    )
    return HttpResponse(status=204)
