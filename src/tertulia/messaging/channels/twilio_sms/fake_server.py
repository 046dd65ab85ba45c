"""A local fake of Twilio's Messages API for SMS, speaking its real HTTP and JSON.

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json   (form: To, From or
         MessagingServiceSid, Body, StatusCallback)  -> 201 + the Message resource

Basic auth with (AccountSid, AuthToken), Twilio's error body ``{"code", "message", "more_info",
"status"}``, injected faults (429 / 20429, 500 / 20500, hangs), and status callbacks (sent,
delivered, or undelivered/failed with an ErrorCode) posted as forms signed with
`X-Twilio-Signature`. `send_inbound` posts an incoming SMS to the configured inbound URL.
Accepted messages go to the same MessageLog as the WhatsApp fake.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import email.utils
import hmac
import itertools
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from ..whatsapp.fake_server import AcceptedMessage, MessageLog, body_hash
from .segments import segment_info
from .signature import SIGNATURE_HEADER, compute

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
BODY_LIMIT = 1600
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# code -> (HTTP status, message)
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}


class TwilioError(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.http_status, default = TWILIO_ERRORS.get(code, (400, "Error"))
        self.message = message or default
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.http_status,
        }


@dataclasses.dataclass
class FakeTwilioConfig:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"  # noqa: S105 - the fake's own, never a real credential
    status_callback: str | None = None  # default when a request gives none
    inbound_url: str | None = None
    latency_ms: float = 0.0
    fault_429: float = 0.0
    fault_5xx: float = 0.0
    fault_timeout: float = 0.0
    hang_seconds: float = 30.0
    statuses: tuple[str, ...] = ("sent", "delivered")
    status_delay_ms: float = 0.0
    unsubscribed: frozenset[str] = frozenset()  # numbers that replied STOP -> 21610
    undeliverable: frozenset[str] = frozenset()  # numbers that end "undelivered" with 30003
    seed: int | None = None


class FakeTwilio:
    def __init__(self, config: FakeTwilioConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or FakeTwilioConfig(), **overrides)
        self.log = MessageLog()
        self.callbacks_posted = 0
        self.callback_failures = 0
        self.rng = random.Random(self.config.seed)
        self.base_url = ""
        self._seq = itertools.count(1)
        self._forced: collections.deque[str | int] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None

    # -- controls --------------------------------------------------------------------------------

    def force(self, fault: str | int, *, times: int = 1) -> None:
        """Next requests fail: "429", "5xx", "timeout", or a Twilio error code."""
        self._forced.extend([fault] * times)

    def send_inbound(self, sender: str, body: str, to: str = "+15550000000") -> str:
        sid = self._sid("SM")
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to,
            "NumSegments": str(max(1, segment_info(body).segments)),
            "MessageSid": sid,
            "AccountSid": self.config.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        if self.config.inbound_url:
            assert self._loop is not None
            asyncio.run_coroutine_threadsafe(
                self._post_form(self.config.inbound_url, params), self._loop
            ).result(10)
        return sid

    def wait_idle(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._tasks:
                return True
            time.sleep(0.01)
        return False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeTwilio:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start_async(host, port))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-twilio", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    async def start_async(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self._handle_create
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        self._session = ClientSession(timeout=ClientTimeout(total=10))

    async def _stop_async(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handler ---------------------------------------------------------------------------------

    def _sid(self, prefix: str) -> str:
        return prefix + secrets.token_hex(16)

    def _authorized(self, request: web.Request, account_sid: str) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise TwilioError(20003)
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            raise TwilioError(20003) from None
        ok_user = hmac.compare_digest(user.encode(), self.config.account_sid.encode())
        ok_password = hmac.compare_digest(password.encode(), self.config.auth_token.encode())
        if not (ok_user and ok_password):
            raise TwilioError(20003)
        if account_sid != self.config.account_sid:
            raise TwilioError(20404)

    def _draw_fault(self) -> str | int | None:
        if self._forced:
            return self._forced.popleft()
        draw = self.rng.random()
        for name, rate in (
            ("429", self.config.fault_429),
            ("5xx", self.config.fault_5xx),
            ("timeout", self.config.fault_timeout),
        ):
            if draw < rate:
                return name
            draw -= rate
        return None

    async def _handle_create(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request, request.match_info["account_sid"])
            form = await request.post()
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000.0)
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            to = params.get("To", "")
            sender = params.get("From")
            service = params.get("MessagingServiceSid")
            body = params.get("Body")
            if not to:
                raise TwilioError(21604)
            if not _E164.match(to):
                raise TwilioError(21211)
            if not sender and not service:
                raise TwilioError(21603)
            if not body:
                raise TwilioError(21602)
            if len(body) > BODY_LIMIT:
                raise TwilioError(21617)
            if to in self.config.unsubscribed:
                raise TwilioError(21610)
            fault = self._draw_fault()
            if fault == "429":
                raise TwilioError(20429)
            if fault == "5xx":
                raise TwilioError(20500)
            if fault == "timeout":
                assert self._stopping is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.hang_seconds)
                return web.Response(status=504)
            if isinstance(fault, int):
                raise TwilioError(fault)
        except TwilioError as error:
            return web.json_response(error.body(), status=error.http_status)

        sid = self._sid("SM")
        now = email.utils.formatdate(usegmt=False).replace("-0000", "+0000")
        info = segment_info(body)
        self.log.append(
            AcceptedMessage(
                seq=next(self._seq),
                message_id=sid,
                phone_number_id=sender or service or "",
                to=to,
                type="sms",
                body_sha256=body_hash({"body": body}),
                reference=None,
                template=None,
                received_at=time.time(),
                payload=params,
            )
        )
        uri = f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages/{sid}"
        resource = {
            "account_sid": self.config.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(info.segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        callback = params.get("StatusCallback") or self.config.status_callback
        if callback:
            task = asyncio.ensure_future(self._callbacks(callback, resource))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(resource, status=201)

    async def _callbacks(self, url: str, resource: Mapping[str, Any]) -> None:
        base = {
            "AccountSid": self.config.account_sid,
            "ApiVersion": API_VERSION,
            "From": resource["from"] or "",
            "MessageSid": resource["sid"],
            "SmsSid": resource["sid"],
            "To": resource["to"],
        }
        if resource["messaging_service_sid"]:
            base["MessagingServiceSid"] = resource["messaging_service_sid"]
        sequence: list[tuple[str, str | None]] = [(s, None) for s in self.config.statuses]
        if resource["to"] in self.config.undeliverable:
            sequence = [("sent", None), ("undelivered", "30003")]
        for status, error_code in sequence:
            if self.config.status_delay_ms:
                await asyncio.sleep(self.config.status_delay_ms / 1000.0)
            params = dict(base, MessageStatus=status, SmsStatus=status)
            if error_code:
                params["ErrorCode"] = error_code
            await self._post_form(url, params)

    async def _post_form(self, url: str, params: dict[str, str]) -> None:
        assert self._session is not None
        headers = {SIGNATURE_HEADER: compute(url, params, self.config.auth_token)}
        for attempt in range(3):
            try:
                async with self._session.post(url, data=params, headers=headers) as response:
                    await response.read()
                    if response.status < 300:
                        self.callbacks_posted += 1
                        return
            except Exception as exc:  # noqa: BLE001 - retried, then counted
                logger.debug("fake Twilio: callback failed: %s", type(exc).__name__)
            self.callback_failures += 1
            await asyncio.sleep(0.05 * 2**attempt)


@contextlib.contextmanager
def run_fake_twilio(
    config: FakeTwilioConfig | None = None, **overrides: Any
) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(config, **overrides)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
