"""Webhook authenticity for the Cloud API.

Meta signs every webhook POST with `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
raw request body keyed with the app secret. The check must run on the exact bytes received
(re-serialised JSON would not match) and compare in constant time so that an attacker cannot
learn the signature byte by byte from response timings.

Subscribing a webhook starts with a GET handshake: Meta sends `hub.mode=subscribe`,
`hub.verify_token` (the token we chose) and `hub.challenge`, and expects the challenge echoed
back as plain text with 200; anything else must be refused (403).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def _key(app_secret: str | bytes) -> bytes:
    return app_secret.encode() if isinstance(app_secret, str) else app_secret


def sign(body: bytes, app_secret: str | bytes) -> str:
    """The header value Meta would send for `body`: ``sha256=<lowercase hex>``."""
    return _PREFIX + hmac.new(_key(app_secret), body, hashlib.sha256).hexdigest()


class SignatureCheck(enum.Enum):
    """Why a signature was accepted or not; the view answers 401 for MISSING, 403 for INVALID."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


def check(body: bytes, header: str | None, app_secret: str | bytes) -> SignatureCheck:
    """Classify the `X-Hub-Signature-256` header of a POST carrying `body`."""
    if header is None or not header.strip():
        return SignatureCheck.MISSING
    if not app_secret:
        # An unconfigured secret must never make every signature "valid".
        return SignatureCheck.INVALID
    header = header.strip()
    if header[: len(_PREFIX)].lower() != _PREFIX:
        return SignatureCheck.INVALID
    received = header[len(_PREFIX) :].lower().encode("ascii", errors="replace")
    expected = sign(body, app_secret)[len(_PREFIX) :].encode("ascii")
    # compare_digest on bytes of possibly different length still runs in time independent of
    # where they differ, which is what matters here.
    if hmac.compare_digest(received, expected):
        return SignatureCheck.VALID
    return SignatureCheck.INVALID


def verify(body: bytes, header: str | None, app_secret: str | bytes) -> bool:
    """True only when `header` is the correct signature of `body` under `app_secret`."""
    return check(body, header, app_secret) is SignatureCheck.VALID


def handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """Answer the GET verification handshake.

    Returns the `hub.challenge` to echo as ``text/plain`` with status 200, or None when the
    request must be refused with 403 (wrong mode, wrong token, or no challenge).
    """
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if mode != "subscribe" or token is None or challenge is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return challenge
