"""Personal data is encrypted with rotatable keys; look-up hashes survive a rotation."""

from __future__ import annotations

from cryptography.fernet import Fernet

from tertulia.core import crypto


def test_values_round_trip_and_are_not_readable(settings) -> None:  # type: ignore[no-untyped-def]
    token = crypto.encrypt("+51987654321")
    assert "987654321" not in token
    assert crypto.decrypt(token) == "+51987654321"


def test_a_new_key_still_reads_what_the_old_key_wrote(settings) -> None:  # type: ignore[no-untyped-def]
    old = Fernet.generate_key().decode()
    settings.TERTULIA_DATA_KEYS = [old]
    token = crypto.encrypt("Juan")
    hashed = crypto.lookup_hash("+51987654321")
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode(), old]
    assert crypto.decrypt(token) == "Juan"
    assert crypto.lookup_hash("+51987654321") == hashed


def test_the_lookup_hash_is_keyed(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode()]
    first = crypto.lookup_hash("+51987654321")
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode()]
    assert crypto.lookup_hash("+51987654321") != first
