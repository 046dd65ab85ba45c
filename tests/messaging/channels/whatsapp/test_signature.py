from __future__ import annotations

import hashlib
import hmac

from tertulia.messaging.channels.whatsapp.signature import (
    SignatureCheck,
    check,
    handshake,
    sign,
    verify,
)

BODY = b'{"object":"whatsapp_business_account","entry":[]}'
SECRET = "app-secret"


def test_sign_matches_hmac_sha256_of_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET) == f"sha256={expected}"
    assert sign(BODY, SECRET.encode()) == sign(BODY, SECRET)


def test_valid_signature_is_accepted() -> None:
    assert verify(BODY, sign(BODY, SECRET), SECRET)
    assert check(BODY, sign(BODY, SECRET).upper().replace("SHA256=", "sha256="), SECRET) is (
        SignatureCheck.VALID
    )


def test_forged_signatures_are_rejected() -> None:
    assert check(BODY, sign(BODY, "other-secret"), SECRET) is SignatureCheck.INVALID
    assert check(BODY + b" ", sign(BODY, SECRET), SECRET) is SignatureCheck.INVALID
    assert check(BODY, "sha256=" + "0" * 64, SECRET) is SignatureCheck.INVALID
    assert check(BODY, "sha1=" + sign(BODY, SECRET)[7:], SECRET) is SignatureCheck.INVALID
    assert check(BODY, sign(BODY, SECRET)[7:], SECRET) is SignatureCheck.INVALID
    assert check(BODY, "sha256=zz\u00e9", SECRET) is SignatureCheck.INVALID


def test_missing_signature_is_told_apart_from_a_wrong_one() -> None:
    assert check(BODY, None, SECRET) is SignatureCheck.MISSING
    assert check(BODY, "  ", SECRET) is SignatureCheck.MISSING
    assert not verify(BODY, None, SECRET)


def test_an_empty_secret_never_validates() -> None:
    assert check(BODY, sign(BODY, ""), "") is SignatureCheck.INVALID


def test_handshake_echoes_the_challenge_for_the_right_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert handshake(params, "tok") == "1158201444"


def test_handshake_refuses_wrong_token_mode_or_missing_challenge() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "42"}
    assert handshake({**good, "hub.verify_token": "nope"}, "tok") is None
    assert handshake({**good, "hub.mode": "unsubscribe"}, "tok") is None
    assert handshake({k: v for k, v in good.items() if k != "hub.challenge"}, "tok") is None
    assert handshake({}, "tok") is None
    assert handshake(good, "") is None
