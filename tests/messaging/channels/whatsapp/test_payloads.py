from __future__ import annotations

import pytest

from tertulia.messaging.channels.whatsapp.client import (
    PayloadError,
    buttons_payload,
    list_payload,
    media_payload,
    reply_context,
    split_text,
    template_payload,
    text_payload,
)
from tertulia.messaging.channels.whatsapp.fake_server import GraphError, validate_message

TO = "51987654321"


def test_short_text_is_one_payload_in_the_cloud_api_shape() -> None:
    (payload,) = text_payload(TO, "Hola Carlos", reference="outbox:1")
    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "biz_opaque_callback_data": "outbox:1",
        "text": {"preview_url": False, "body": "Hola Carlos"},
    }
    validate_message(payload)


def test_business_scoped_user_ids_go_in_recipient() -> None:
    (payload,) = text_payload("PE.1502576394655843", "Hola")
    assert payload["recipient"] == "PE.1502576394655843" and "to" not in payload
    validate_message(payload)


def test_long_text_splits_at_sentence_boundaries() -> None:
    sentence = "Respira hondo tres veces antes de responder. "
    body = sentence * 200  # 9,000 characters
    parts = split_text(body)
    assert len(parts) == 3
    assert all(len(part) <= 4096 for part in parts)
    assert all(part.endswith("responder.") for part in parts)
    assert " ".join(parts) == body.strip()


def test_split_prefers_paragraphs_then_sentences_then_words() -> None:
    body = "Primera idea. " * 10 + "\n\n" + "b" * 50
    assert split_text(body, limit=160) == [("Primera idea. " * 10).strip(), "b" * 50]
    assert split_text("¿Qué sentiste? ¡Cuéntame! Luego seguimos", limit=26) == [
        "¿Qué sentiste? ¡Cuéntame!",
        "Luego seguimos",
    ]
    assert split_text("palabra " * 10, limit=20) == ["palabra palabra", "palabra palabra"] * 2 + [
        "palabra palabra"
    ]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("   ") == []


def test_text_parts_get_distinct_references() -> None:
    payloads = text_payload(TO, "Una frase corta. " * 400, reference="outbox:9", reply_to="wamid.A")
    assert [p["biz_opaque_callback_data"] for p in payloads] == ["outbox:9.1", "outbox:9.2"]
    assert payloads[0]["context"] == {"message_id": "wamid.A"}
    assert "context" not in payloads[1]
    for payload in payloads:
        validate_message(payload)


def test_empty_text_is_refused() -> None:
    with pytest.raises(PayloadError):
        text_payload(TO, "  ")
    with pytest.raises(PayloadError):
        text_payload("", "hola")


def test_media_by_id_or_link() -> None:
    audio = media_payload(TO, "audio", media_id="1139271117723454")
    assert audio["audio"] == {"id": "1139271117723454"} and audio["type"] == "audio"
    video = media_payload(TO, "video", link="https://example.org/d1.mp4", caption="Día 1")
    assert video["video"] == {"link": "https://example.org/d1.mp4", "caption": "Día 1"}
    doc = media_payload(TO, "document", media_id="9", filename="reto.pdf", caption="Reto")
    assert doc["document"]["filename"] == "reto.pdf"
    for payload in (audio, video, doc):
        validate_message(payload)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "gif", "media_id": "1"},
        {"kind": "image"},
        {"kind": "image", "media_id": "1", "link": "https://x"},
        {"kind": "audio", "media_id": "1", "caption": "no captions on audio"},
        {"kind": "image", "media_id": "1", "caption": "x" * 1025},
        {"kind": "image", "media_id": "1", "filename": "a.jpg"},
    ],
)
def test_media_limits(kwargs: dict[str, str]) -> None:
    with pytest.raises(PayloadError):
        media_payload(TO, **kwargs)


def test_reply_buttons() -> None:
    payload = buttons_payload(
        TO,
        "¿Hiciste el reto de hoy?",
        [("yes", "Sí, lo hice"), ("no", "Todavía no"), ("help", "Necesito ayuda")],
        footer="Día 3",
    )
    interactive = payload["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "¿Hiciste el reto de hoy?"}
    assert interactive["action"]["buttons"][0] == {
        "type": "reply",
        "reply": {"id": "yes", "title": "Sí, lo hice"},
    }
    validate_message(payload)


@pytest.mark.parametrize(
    ("body", "buttons"),
    [
        ("Pregunta", []),
        ("Pregunta", [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]),
        ("Pregunta", [("a", "x" * 21)]),
        ("Pregunta", [("a", "A"), ("a", "B")]),
        ("Pregunta", [("a", "A"), ("b", "A")]),
        ("Pregunta", [("", "A")]),
        ("x" * 1025, [("a", "A")]),
        ("", [("a", "A")]),
    ],
)
def test_reply_button_limits(body: str, buttons: list[tuple[str, str]]) -> None:
    with pytest.raises(PayloadError):
        buttons_payload(TO, body, buttons)


def test_list() -> None:
    payload = list_payload(
        TO,
        "¿Cómo te sientes hoy?",
        "Elegir",
        [("Ánimo", [("mood:1", "Mal"), ("mood:3", "Más o menos", "Un día regular")])],
    )
    section = payload["interactive"]["action"]["sections"][0]
    assert section["rows"][1] == {
        "id": "mood:3",
        "title": "Más o menos",
        "description": "Un día regular",
    }
    validate_message(payload)
    with pytest.raises(PayloadError):
        list_payload(TO, "b", "Elegir", [("s", [(f"r{i}", "t") for i in range(11)])])
    with pytest.raises(PayloadError):
        list_payload(TO, "b", "Elegir", [(None, [("a", "A")]), (None, [("b", "B")])])
    with pytest.raises(PayloadError):
        list_payload(TO, "b", "x" * 21, [("s", [("a", "A")])])


def test_template_with_positional_named_header_and_button_parameters() -> None:
    payload = template_payload(
        TO,
        "dia_inicio",
        "es",
        ["Carlos", "4"],
        header={"type": "video", "video": {"id": "123"}},
        button_payloads=["day:4:start"],
        reference="outbox:5",
    )
    components = payload["template"]["components"]
    assert payload["template"]["language"] == {"code": "es"}
    assert components[0] == {
        "type": "header",
        "parameters": [{"type": "video", "video": {"id": "123"}}],
    }
    assert components[1]["parameters"] == [
        {"type": "text", "text": "Carlos"},
        {"type": "text", "text": "4"},
    ]
    assert components[2] == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": "day:4:start"}],
    }
    named = template_payload(TO, "dia_inicio", "es", {"nombre": "Carlos"})
    assert named["template"]["components"][0]["parameters"][0]["parameter_name"] == "nombre"
    bare = template_payload(TO, "hello_world", "en_US")
    assert "components" not in bare["template"]
    for p in (payload, named, bare):
        validate_message(p)


def test_reply_context_copies() -> None:
    (payload,) = text_payload(TO, "Gracias por contarlo")
    replied = reply_context(payload, "wamid.XYZ")
    assert replied["context"] == {"message_id": "wamid.XYZ"}
    assert "context" not in payload


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"to": TO, "type": "text", "text": {"body": "x"}}, 100),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 100),
        ({"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {}}, 131008),
        ({"messaging_product": "whatsapp", "to": TO, "text": {"body": "x" * 4097}}, 100),
        ({"messaging_product": "whatsapp", "to": "hola", "text": {"body": "x"}}, 131009),
        ({"messaging_product": "whatsapp", "to": TO, "type": "carousel", "carousel": {}}, 131009),
        ({"messaging_product": "whatsapp", "to": TO, "type": "template", "template": {}}, 131008),
    ],
)
def test_fake_validates_like_meta(payload: dict[str, object], code: int) -> None:
    with pytest.raises(GraphError) as info:
        validate_message(payload)
    assert info.value.code == code
