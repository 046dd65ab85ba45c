"""Encryption of personal data at rest and keyed hashes for looking it up.

Values are encrypted with Fernet (AES-128-CBC with HMAC-SHA256) under MultiFernet, so that a new
key can be put first while older keys still decrypt. Look-up hashes are HMAC-SHA256 under a key
derived from the oldest data key, so that rotating keys does not change them.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


@lru_cache(maxsize=4)
def _lookup_key(oldest: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"tertulia-lookup-hash"
    ).derive(oldest.encode())


def _keys() -> tuple[str, ...]:
    return tuple(settings.TERTULIA_DATA_KEYS)


def encrypt(value: str) -> str:
    return _fernet(_keys()).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(_keys()).decrypt(token.encode()).decode()


def lookup_hash(value: str) -> str:
    """A stable keyed hash of `value`: equal inputs give equal hashes, and without the key the
    hash reveals nothing (a plain hash of a phone number is easy to reverse by enumeration)."""
    return hmac.new(_lookup_key(_keys()[-1]), value.encode(), hashlib.sha256).hexdigest()
