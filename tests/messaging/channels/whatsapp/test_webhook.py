from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tertulia.messaging.channels.whatsapp.webhook import (
    InboundEvent,
    ParsedEnvelope,
    parse_envelope,
    parse_timestamp,
)

DATA = Path(__file__).resolve().parents[3] / "data" / "whatsapp"
T0 = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)  # 1767261600


def parsed(name: str) -> ParsedEnvelope:
    return parse_envelope((DATA / f"{name}.json").read_bytes())


def only_inbound(name: str) -> InboundEvent:
    result = parsed(name)
    assert result.problems == []
    assert len(result.inbound) == 1 and not result.statuses
    return result.inbound[0]


def test_text() -> None:
    event = only_inbound("text")
    assert event.type == "text"
    assert event.text == "Hola, hoy hice el ejercicio de respirar."
    assert event.wa_id == "51987654321" and event.user_id is None
    assert event.profile_name == "Carlos"
    assert event.timestamp == T0 and event.timestamp.tzinfo is dt.UTC
    assert event.phone_number_id == "100000000000001"
    assert event.waba_id == "200000000000001"
    assert event.message_id.startswith("wamid.")
    assert event.context_message_id is None


def test_reply_context() -> None:
    event = only_inbound("text_reply_context")
    assert event.context_message_id == "wamid.HBgLNTE5ODc2NTQzMjEVAgARGBJCRUVGMDAxMTIyMzM0NDU1NjYA"
    assert event.context_from == "51900000001"


def test_interactive_button_reply() -> None:
    event = only_inbound("interactive_button_reply")
    assert (event.type, event.button_payload, event.button_title) == (
        "interactive",
        "checkin:day3:yes",
        "Sí, lo hice",
    )
    assert event.context_message_id is not None


def test_interactive_list_reply() -> None:
    event = only_inbound("interactive_list_reply")
    assert (event.list_id, event.list_title, event.list_description) == (
        "mood:3",
        "Más o menos",
        "Un día regular",
    )


def test_template_quick_reply_button() -> None:
    event = only_inbound("button_template_reply")
    assert (event.type, event.button_payload, event.button_title) == (
        "button",
        "day:4:start",
        "Empezar",
    )


def test_voice_note() -> None:
    event = only_inbound("audio_voice")
    assert event.type == "audio" and event.voice is True
    assert event.media_id == "1139271117723454"
    assert event.mime_type == "audio/ogg; codecs=opus"


def test_media_with_caption_and_filename() -> None:
    image = only_inbound("image")
    assert (image.media_id, image.caption, image.voice) == ("1498373764289837", "Mi tarea", False)
    document = only_inbound("document")
    assert document.filename == "presupuesto.pdf" and document.mime_type == "application/pdf"
    assert only_inbound("video").media_id == "1023412312312312"
    assert only_inbound("sticker").mime_type == "image/webp"


def test_reaction() -> None:
    event = only_inbound("reaction")
    assert event.reaction_emoji == "\U0001f44d"
    assert event.reaction_message_id == "wamid.HBgLNTE5ODc2NTQzMjEVAgARGBJEQVkwMDNWSURFTwA="


def test_location() -> None:
    event = only_inbound("location")
    assert event.location is not None
    assert (event.location.latitude, event.location.longitude) == (-12.046374, -77.042793)
    assert event.location.name == "Plaza Mayor"


def test_unsupported_is_kept_with_its_error() -> None:
    event = only_inbound("unsupported")
    assert event.type == "unsupported"
    assert event.errors[0].code == 131051
    assert event.errors[0].details == "Message type is currently not supported."


def test_click_to_whatsapp_referral() -> None:
    event = only_inbound("referral_ad")
    assert event.referral is not None
    assert event.referral.source_type == "ad"
    assert event.referral.source_id == "120212345678900123"
    assert event.referral.headline == "Hablemos entre patas"
    assert event.referral.ctwa_clid and event.referral.ctwa_clid.startswith("ARAk")


def test_millisecond_timestamps() -> None:
    event = only_inbound("millisecond_timestamp")
    assert event.timestamp == T0 + dt.timedelta(milliseconds=123)
    assert parse_timestamp(1767261600) == T0
    assert parse_timestamp("1767261600000") == T0
    assert parse_timestamp("nope") is None
    assert parse_timestamp("1e400") is None
    assert parse_timestamp(True) is None
    assert parse_timestamp(-5) is None


def test_sender_known_only_by_business_scoped_user_id() -> None:
    event = only_inbound("user_id_only")
    assert event.wa_id is None
    assert event.user_id == "PE.1502576394655843"
    assert event.username == "@luis_lima"
    assert event.profile_name == "Luis"
    assert event.sender_key == "PE.1502576394655843"


def test_system_message_number_change() -> None:
    event = only_inbound("system_number_change")
    assert event.system_type == "user_changed_number"
    assert event.new_wa_id == "51911122233"


def test_statuses_with_pricing_and_reference() -> None:
    result = parsed("statuses_sent_delivered_read")
    assert result.problems == [] and not result.inbound
    sent, delivered, read = result.statuses
    assert [s.status for s in result.statuses] == ["sent", "delivered", "read"]
    assert sent.timestamp == T0 and read.timestamp == T0 + dt.timedelta(seconds=100)
    assert sent.recipient_id == "51987654321"
    assert sent.pricing_category == "utility" and sent.billable is True
    assert sent.pricing_model == "PMP" and sent.pricing_type == "regular"
    assert sent.conversation_id == "6ceb9d929c4ff1ad4a5c4d7f6e3b8a11"
    assert sent.conversation_origin == "utility"
    assert sent.conversation_expires == T0 + dt.timedelta(days=1)
    assert delivered.biz_opaque_callback_data == "outbox:42"
    assert read.pricing_category is None and read.errors == ()


def test_failed_status_carries_code_and_title() -> None:
    (status,) = parsed("status_failed_131047").statuses
    assert status.status == "failed"
    assert status.error_code == 131047
    assert status.errors[0].title == "Re-engagement message"
    assert status.errors[0].details and "24 hours" in status.errors[0].details
    assert status.biz_opaque_callback_data == "outbox:77"


def test_played_and_user_id_statuses() -> None:
    (played,) = parsed("status_played").statuses
    assert played.status == "played"
    (status,) = parsed("status_user_id_only").statuses
    assert status.recipient_id is None
    assert status.recipient_user_id == "PE.1502576394655843"
    assert status.billable is False and status.pricing_category == "service"


def test_many_entries_changes_messages_and_statuses() -> None:
    result = parsed("multi_entry")
    assert result.problems == []
    assert len(result.inbound) == 3 and len(result.statuses) == 3
    by_id = {event.message_id: event for event in result.inbound}
    # contacts are matched to messages by wa_id, not by position
    assert by_id["wamid.MULTI1"].profile_name == "Jorge"
    assert by_id["wamid.MULTI2"].profile_name == "Pedro"
    assert by_id["wamid.MULTI1"].phone_number_id == "100000000000002"
    assert by_id["wamid.MULTI1"].waba_id == "200000000000002"


def test_other_fields_are_passed_on_not_dropped() -> None:
    result = parsed("template_status_update")
    assert result.problems == [] and not result.inbound and not result.statuses
    (change,) = result.other_changes
    assert change.field == "message_template_status_update"
    assert change.value["event"] == "PAUSED"


def test_every_sample_parses_cleanly() -> None:
    for path in sorted(DATA.glob("*.json")):
        result = parse_envelope(path.read_bytes())
        assert result.problems == [], (path.name, result.problems)
        assert result.inbound or result.statuses or result.other_changes, path.name


def test_garbage_yields_problems_not_exceptions() -> None:
    for raw in [b"", b"\xff\xfe", b"[]", b"null", b'"x"', b"{", b"[" * 100_000, b"1" * 5000]:
        result = parse_envelope(raw)
        assert result.problems and not result.inbound
    result = parse_envelope(b'{"object":"whatsapp_business_account","entry":[{"changes":[1]}]}')
    assert result.problems == ["entry[0].changes[0]: not an object"]


def test_one_bad_message_does_not_hide_the_good_ones() -> None:
    document = json.loads((DATA / "multi_entry.json").read_text())
    messages = document["entry"][1]["changes"][0]["value"]["messages"]
    messages.insert(0, {"type": "text"})  # no id
    messages.insert(0, "not an object")
    messages.append({"id": "wamid.X", "from": "51900000009", "type": "image", "image": []})
    result = parse_envelope(json.dumps(document).encode())
    assert len(result.inbound) == 4
    assert len(result.problems) == 3
    # problems name paths and types, never the message content
    assert not any("Hola" in problem or "519" in problem for problem in result.problems)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            [
                "object", "entry", "id", "changes", "field", "value", "messages", "statuses",
                "contacts", "from", "from_user_id", "type", "text", "body", "timestamp",
                "interactive", "button_reply", "list_reply", "button", "audio", "errors", "code",
                "status", "pricing", "conversation", "origin", "metadata", "context", "referral",
                "location", "latitude", "reaction", "profile", "wa_id", "user_id", "voice",
            ]
        )
        | st.text(max_size=8),
        children,
        max_size=5,
    ),
    max_leaves=40,
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_fuzz_never_raises_on_json(document: object) -> None:
    envelope = {"object": "whatsapp_business_account", "entry": [document]}
    for candidate in (document, envelope):
        raw = json.dumps(candidate, allow_nan=True).encode()
        result = parse_envelope(raw)
        assert isinstance(result, ParsedEnvelope)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_never_raises_on_bytes(raw: bytes) -> None:
    assert isinstance(parse_envelope(raw), ParsedEnvelope)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_mutated_samples(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(DATA.glob("*.json"))))
    document = json.loads(path.read_text())
    change_value = document["entry"][0]["changes"][0]["value"]
    key = data.draw(st.sampled_from(sorted(change_value)))
    change_value[key] = data.draw(JSONISH)
    assert isinstance(parse_envelope(json.dumps(document).encode()), ParsedEnvelope)
