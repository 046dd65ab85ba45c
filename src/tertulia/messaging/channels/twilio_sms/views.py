"""Twilio's webhooks: `/webhooks/twilio/<name>/sms/` (an incoming SMS) and
`/webhooks/twilio/<name>/status/` (a delivery status).

Both check `X-Twilio-Signature` over the URL Twilio called and the posted form: 403 when it is
missing or wrong, before anything is stored. A signed request is then stored as it came (the
form and our reference, encrypted) in one committed INSERT, as WhatsApp's are, and answered;
workers claim stored events and apply them (whatsapp/handoff.py, processing.py): the SMS
becomes a Message once, by its MessageSid, and is routed like every channel's. The SMS answer
is an empty TwiML document, since replies go out through the Outbox. Behind a proxy, Django
must know the public scheme and host (SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST) for the
URL to match the one Twilio signed."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tertulia.core import clock
from tertulia.messaging.models import TwilioConfig

from ..whatsapp.handoff import webhook_event_store
from .processing import SMS, STATUS, twilio_event_body
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
    webhook_event_store(
        channel=config.channel,
        body=twilio_event_body(SMS, request.POST.dict()),
        received_at=clock.now(),
        has_messages=True,
    )
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_status_webhook(request: HttpRequest, name: str) -> HttpResponse:
    config = _signed_config(request, name)
    if isinstance(config, HttpResponse):
        return config
    webhook_event_store(
        channel=config.channel,
        body=twilio_event_body(STATUS, request.POST.dict(), request.GET.get("m", "")),
        received_at=clock.now(),
        has_messages=False,
    )
    return HttpResponse(status=204)
