"""Twilio request signatures (`X-Twilio-Signature`), through the official library.

Twilio signs each webhook with HMAC-SHA1, keyed with the account's auth token, over the full
URL it called followed by the POST parameters sorted by name, base64-encoded. The library's
RequestValidator also accepts the URL with or without the default port, as Twilio's own
servers may sign either; we use it rather than re-implementing those rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def compute(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The signature Twilio would send when posting `params` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def verify(url: str, params: Mapping[str, str], signature: str | None, auth_token: str) -> bool:
    """True only when `signature` is Twilio's signature of `params` posted to `url`.

    `url` must be the URL exactly as Twilio called it (scheme, host, path and query string);
    behind a proxy, rebuild it from the forwarded headers before calling this."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
