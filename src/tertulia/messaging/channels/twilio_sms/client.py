"""Send SMS through Twilio's Messages API with the official `twilio` library.

The library's `Client` builds URLs from each domain's `base_url` ("https://api.twilio.com" for
the Messages API); setting `client.api.base_url` points it at the local fake, and clearing
`edge`/`region` keeps TWILIO_EDGE/TWILIO_REGION in the environment from rewriting that host.

Errors map to the same actions as WhatsApp (errors.Action), from Twilio's error codes.
Timeouts and dropped connections after the request was sent are `maybe_accepted`: Twilio has
no idempotency key for message creation, so such a message must be reconciled (status
callback, or listing messages) before it is ever sent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..whatsapp.errors import Action

logger = logging.getLogger(__name__)

# Twilio's request logger records URLs and headers at INFO; keep it quiet by default so that
# nothing about recipients reaches the logs through it.
_twilio_http_logger = logging.getLogger("tertulia.twilio_sms.http")
_twilio_http_logger.setLevel(logging.WARNING)

# Twilio error code -> action. https://www.twilio.com/docs/api/errors
TWILIO_ERROR_ACTIONS: dict[int, Action] = {
    20429: Action.RETRY,  # Too Many Requests
    20500: Action.RETRY,  # Internal Server Error
    20503: Action.RETRY,  # Service unavailable
    21611: Action.RETRY,  # This 'From' number has exceeded the maximum number of queued messages
    30001: Action.RETRY,  # Queue overflow
    20003: Action.PAUSE_CHANNEL,  # Authentication failed
    21606: Action.PAUSE_CHANNEL,  # The 'From' phone number is not a valid, SMS-capable number
    21608: Action.PAUSE_CHANNEL,  # Trial account: unverified 'To' number
    30002: Action.PAUSE_CHANNEL,  # Account suspended
    21211: Action.UNDELIVERABLE,  # Invalid 'To' phone number
    21408: Action.UNDELIVERABLE,  # Permission to send to this region is not enabled
    21610: Action.UNDELIVERABLE,  # The recipient replied STOP (unsubscribed)
    21612: Action.UNDELIVERABLE,  # The 'To' number cannot be reached via this 'From'
    21614: Action.UNDELIVERABLE,  # 'To' is not a valid mobile number
    30003: Action.UNDELIVERABLE,  # Unreachable destination handset
    30004: Action.UNDELIVERABLE,  # Message blocked
    30005: Action.UNDELIVERABLE,  # Unknown destination handset
    30006: Action.UNDELIVERABLE,  # Landline or unreachable carrier
    30007: Action.UNDELIVERABLE,  # Message filtered (carrier)
}


def twilio_action_for(code: int | None, *, http_status: int | None = None) -> Action:
    if code is not None and code in TWILIO_ERROR_ACTIONS:
        return TWILIO_ERROR_ACTIONS[code]
    if http_status is not None and (http_status == 429 or 500 <= http_status <= 599):
        return Action.RETRY
    return Action.FAIL_VISIBLY


@dataclass(frozen=True)
class SMSResult:
    sid: str
    status: str | None
    num_segments: int | None


class TwilioSMSError(Exception):
    def __init__(
        self,
        *,
        code: int | None,
        title: str,
        http_status: int | None,
        action: Action,
        maybe_accepted: bool = False,
        more_info: str | None = None,
    ) -> None:
        self.code = code
        self.title = title
        self.http_status = http_status
        self.action = action
        self.maybe_accepted = maybe_accepted
        self.more_info = more_info
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"code={self.code}" if self.code is not None else "transport error"]
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        parts.append(f"action={self.action.value}")
        if self.maybe_accepted:
            parts.append("maybe_accepted")
        return f"{self.title} ({', '.join(parts)})"


class TwilioSMSClient:
    """One account's SMS sender. `base_url` replaces https://api.twilio.com (tests, fakes)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("give from_number or messaging_service_sid")
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        http_client = TwilioHttpClient(timeout=timeout, logger=_twilio_http_logger)
        self._client = Client(account_sid, auth_token, http_client=http_client)
        if base_url:
            self._client.edge = None
            self._client.region = None
            self._client.api.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"<TwilioSMSClient account_sid={self.account_sid}>"

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SMSResult:
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            assert self.from_number is not None
            kwargs["from_"] = self.from_number
        callback = status_callback or self.status_callback
        if callback:
            kwargs["status_callback"] = callback
        try:
            message = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            error = TwilioSMSError(
                code=code,
                title=_title(exc.msg),
                http_status=exc.status,
                action=twilio_action_for(code, http_status=exc.status),
                more_info=f"https://www.twilio.com/docs/errors/{code}" if code else None,
            )
            logger.info(
                "Twilio refused an SMS: code=%s http=%s action=%s",
                error.code,
                error.http_status,
                error.action.value,
            )
            raise error from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Connect failures happen before anything was sent; anything later may have been
            # accepted by Twilio.
            maybe = not isinstance(exc, requests.ConnectTimeout) and not _refused(exc)
            raise TwilioSMSError(
                code=None,
                title=f"{type(exc).__name__} talking to Twilio",
                http_status=None,
                action=Action.RETRY,
                maybe_accepted=maybe,
            ) from exc
        segments = message.num_segments
        return SMSResult(
            sid=message.sid or "",
            status=str(message.status) if message.status is not None else None,
            num_segments=int(segments) if segments not in (None, "") else None,
        )


def _refused(exc: requests.RequestException) -> bool:
    """True when the connection was never established (nothing was sent)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def _title(message: object) -> str:
    # TwilioRestException.msg is "Unable to create record: <Twilio's message>"; Twilio's
    # messages can quote the 'To' number, so keep only the part before any quoted value.
    text = str(message or "Twilio error")
    return text.split("'+")[0].split(": ", 1)[-1][:200]
