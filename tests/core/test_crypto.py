"""Personal data is encrypted with rotatable keys; look-up hashes survive a rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken

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


def test_new_values_use_aes_gcm_and_each_gets_its_own_nonce(settings) -> None:  # type: ignore[no-untyped-def]
    first, second = crypto.encrypt("Hola Pata 3"), crypto.encrypt("Hola Pata 3")
    assert first.startswith(crypto.V2) and second.startswith(crypto.V2)
    assert first != second  # equal texts do not give equal tokens
    assert crypto.decrypt(first) == crypto.decrypt(second) == "Hola Pata 3"


def test_values_written_with_fernet_before_still_read(settings) -> None:  # type: ignore[no-untyped-def]
    key = Fernet.generate_key().decode()
    settings.TERTULIA_DATA_KEYS = [key]
    legacy = Fernet(key.encode()).encrypt(b"+51987654321").decode()
    assert crypto.decrypt(legacy) == "+51987654321"
    # Under a newer key too, as a rotation leaves it.
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode(), key]
    assert crypto.decrypt(legacy) == "+51987654321"


def test_an_altered_token_or_an_unknown_key_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode()]
    token = crypto.encrypt("mensaje privado")
    body = token[len(crypto.V2) :]
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    with pytest.raises(InvalidToken):
        crypto.decrypt(crypto.V2 + flipped)
    with pytest.raises(InvalidToken):
        crypto.decrypt(crypto.V2 + "not base64 at all!")
    settings.TERTULIA_DATA_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(InvalidToken):
        crypto.decrypt(token)
