"""Encryption of personal data at rest and keyed hashes for looking it up.

Values are encrypted with AES-256-GCM under a key derived (HKDF) from the newest data key, and
stored as "v2." + base64(nonce + ciphertext + tag). Older values are Fernet tokens (AES-128-CBC
with HMAC-SHA256) and still decrypt, as do values written under any older key, so a new key
can be put first. AES-GCM does in one call what Fernet did in several, which mattered on the
paths that decrypt or encrypt every message (decision 0103). Look-up hashes are HMAC-SHA256
under a key derived from the oldest data key, so that rotating keys does not change them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


# Not in Fernet's URL-safe base64 alphabet: no Fernet token starts with it.
V2 = "v2."
_NONCE = 12


@lru_cache(maxsize=4)
def _aead(keys: tuple[str, ...]) -> tuple[AESGCM, ...]:
    return tuple(
        AESGCM(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tertulia-aes-gcm").derive(
                k.encode()
            )
        )
        for k in keys
    )


@lru_cache(maxsize=4)
def _lookup_key(oldest: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"tertulia-lookup-hash"
    ).derive(oldest.encode())


def _keys() -> tuple[str, ...]:
    return tuple(settings.TERTULIA_DATA_KEYS)


def encrypt(value: str) -> str:
    # A random 96-bit nonce per value: safe for far more values than a program writes under
    # one key (about 2**32); rotating the key starts the count again.
    nonce = os.urandom(_NONCE)
    sealed = _aead(_keys())[0].encrypt(nonce, value.encode(), None)
    return V2 + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(token: str) -> str:
    """The value of a token from `encrypt`, or of a Fernet token from before; InvalidToken
    when no configured key opens it or it was altered."""
    if not token.startswith(V2):
        return _fernet(_keys()).decrypt(token.encode()).decode()
    try:
        raw = base64.urlsafe_b64decode(token[len(V2) :])
    except ValueError as exc:
        raise InvalidToken from exc
    nonce, sealed = raw[:_NONCE], raw[_NONCE:]
    for aead in _aead(_keys()):
        try:
            return aead.decrypt(nonce, sealed, None).decode()
        except (InvalidTag, ValueError):
            continue
    raise InvalidToken


def lookup_hash(value: str) -> str:
    """A stable keyed hash of `value`: equal inputs give equal hashes, and without the key the
    hash reveals nothing (a plain hash of a phone number is easy to reverse by enumeration)."""
    return hmac.new(_lookup_key(_keys()[-1]), value.encode(), hashlib.sha256).hexdigest()
