"""Parse the body of a Cloud API webhook POST into plain events.

Meta posts ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": "messages", "value": {...}}]}]}``; one POST may carry many entries, changes, inbound
messages and statuses, and Meta keeps retrying a delivery for days until we answer 200. So the
parser must be total: whatever the bytes, `parse_envelope` returns what it could understand and
lists the rest in `problems`. It never raises, because an exception here would turn into a 500,
Meta would retry the same body forever, and the good events in it would be stuck behind the bad.

Problems name JSON paths and types only, never message bodies, names or phone numbers: they end
up in logs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Timestamps are strings of seconds; some relays send milliseconds. Any value above this is
# taken as milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECONDS_ABOVE = 100_000_000_000

MEDIA_TYPES = frozenset({"audio", "image", "video", "document", "sticker"})


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of an `errors` array (inbound unsupported messages, failed statuses, values)."""

    code: int | None
    title: str | None = None
    message: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Referral:
    """Where a click-to-WhatsApp ad conversation started; `ctwa_clid` identifies the click."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None


@dataclass(frozen=True)
class Location:
    latitude: float | None
    longitude: float | None
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class InboundEvent:
    """A message a person sent to one of our numbers.

    Identity: `wa_id` is the phone-number id (`from`); `user_id` is the business-scoped user id
    (`from_user_id` / `contacts[].user_id`) that is the only identifier for people who set a
    WhatsApp username and hide their number. At least one of them is set.
    """

    message_id: str
    type: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    profile_name: str | None = None
    timestamp: dt.datetime | None = None
    phone_number_id: str | None = None
    display_phone_number: str | None = None
    waba_id: str | None = None
    # text body; for system messages, the system notice
    text: str | None = None
    # interactive button_reply (id, title) and template quick-reply button (payload, text)
    button_payload: str | None = None
    button_title: str | None = None
    # interactive list_reply
    list_id: str | None = None
    list_title: str | None = None
    list_description: str | None = None
    # interactive nfm_reply (WhatsApp Flows): the JSON string the flow returned
    flow_response: str | None = None
    # audio, image, video, document, sticker
    media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    voice: bool = False
    caption: str | None = None
    filename: str | None = None
    # reaction: the message reacted to, and the emoji ("" when a reaction is removed)
    reaction_message_id: str | None = None
    reaction_emoji: str | None = None
    location: Location | None = None
    # the message this one replies to (swipe-reply or tapped button)
    context_message_id: str | None = None
    context_from: str | None = None
    forwarded: bool = False
    referral: Referral | None = None
    # why the message could not be read (type "unsupported"/"unknown"); stored, never a crash
    errors: tuple[ErrorDetail, ...] = ()
    # system messages: what changed, and the new identifiers
    system_type: str | None = None
    new_wa_id: str | None = None
    new_user_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sender_key(self) -> str:
        """A stable identifier for the sender: the phone id when known, else the BSUID."""
        return self.wa_id or self.user_id or ""


@dataclass(frozen=True)
class StatusEvent:
    """A change in the delivery state of a message we sent. Order of arrival is not guaranteed
    and `delivered` may be skipped when a message is read at once."""

    message_id: str
    status: str
    timestamp: dt.datetime | None = None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    phone_number_id: str | None = None
    waba_id: str | None = None
    errors: tuple[ErrorDetail, ...] = ()
    pricing_category: str | None = None
    pricing_model: str | None = None
    pricing_type: str | None = None
    billable: bool | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    conversation_expires: dt.datetime | None = None
    # our own reference, sent as biz_opaque_callback_data and echoed back by Meta
    biz_opaque_callback_data: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def error_code(self) -> int | None:
        return self.errors[0].code if self.errors else None


@dataclass(frozen=True)
class OtherChange:
    """A change for a field other than `messages` (template status, account updates, ...)."""

    field: str
    value: Mapping[str, Any]
    waba_id: str | None = None


@dataclass
class ParsedEnvelope:
    inbound: list[InboundEvent] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)
    # errors attached to a change value rather than to a message (entry.changes.value.errors)
    errors: list[ErrorDetail] = field(default_factory=list)
    other_changes: list[OtherChange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- small total coercions: they return None instead of raising on the wrong type --------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # Ids and numbers occasionally arrive unquoted from relays; keep them, as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return None


def parse_timestamp(value: Any) -> dt.datetime | None:
    """Seconds (or milliseconds) since the epoch, as string or number, to an aware UTC datetime."""
    number = _float(value)
    if number is None or number < 0:
        return None
    if number > _MILLISECONDS_ABOVE:
        number /= 1000.0
    try:
        return dt.datetime.fromtimestamp(number, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _errors(value: Any) -> tuple[ErrorDetail, ...]:
    result = []
    for item in _list(value):
        item = _dict(item)
        if not item:
            continue
        result.append(
            ErrorDetail(
                code=_int(item.get("code")),
                title=_str(item.get("title")),
                message=_str(item.get("message")),
                details=_str(_dict(item.get("error_data")).get("details")),
            )
        )
    return tuple(result)


def _referral(value: Any) -> Referral | None:
    ref = _dict(value)
    if not ref:
        return None
    return Referral(
        source_url=_str(ref.get("source_url")),
        source_id=_str(ref.get("source_id")),
        source_type=_str(ref.get("source_type")),
        headline=_str(ref.get("headline")),
        body=_str(ref.get("body")),
        media_type=_str(ref.get("media_type")),
        ctwa_clid=_str(ref.get("ctwa_clid")),
    )


def _contact_for(contacts: list[Any], wa_id: str | None, user_id: str | None) -> dict[str, Any]:
    """The contacts[] entry describing this sender (Meta sends them in a parallel array)."""
    candidates = [_dict(c) for c in contacts]
    for contact in candidates:
        if wa_id and _str(contact.get("wa_id")) == wa_id:
            return contact
        if user_id and _str(contact.get("user_id")) == user_id:
            return contact
    return candidates[0] if len(candidates) == 1 else {}


def _inbound(
    msg: dict[str, Any], value: dict[str, Any], waba_id: str | None, path: str, problems: list[str]
) -> InboundEvent | None:
    message_id = _str(msg.get("id"))
    if not message_id:
        problems.append(f"{path}: message without an id, skipped")
        return None
    msg_type = _str(msg.get("type")) or "unknown"
    wa_id = _str(msg.get("from"))
    user_id = _str(msg.get("from_user_id"))
    contact = _contact_for(_list(value.get("contacts")), wa_id, user_id)
    wa_id = wa_id or _str(contact.get("wa_id"))
    user_id = user_id or _str(contact.get("user_id"))
    if not wa_id and not user_id:
        problems.append(f"{path}: message without a sender (from / from_user_id)")
    metadata = _dict(value.get("metadata"))
    fields: dict[str, Any] = {
        "message_id": message_id,
        "type": msg_type,
        "wa_id": wa_id,
        "user_id": user_id,
        "parent_user_id": _str(msg.get("from_parent_user_id"))
        or _str(contact.get("parent_user_id")),
        "username": _str(_dict(contact.get("profile")).get("username"))
        or _str(contact.get("username")),
        "profile_name": _str(_dict(contact.get("profile")).get("name")),
        "timestamp": parse_timestamp(msg.get("timestamp")),
        "phone_number_id": _str(metadata.get("phone_number_id")),
        "display_phone_number": _str(metadata.get("display_phone_number")),
        "waba_id": waba_id,
        "referral": _referral(msg.get("referral")),
        "errors": _errors(msg.get("errors")),
        "raw": msg,
    }
    if msg.get("timestamp") is not None and fields["timestamp"] is None:
        problems.append(f"{path}: unreadable timestamp")

    context = _dict(msg.get("context"))
    if context:
        fields["context_message_id"] = _str(context.get("id"))
        fields["context_from"] = _str(context.get("from"))
        fields["forwarded"] = bool(_bool(context.get("forwarded")))

    body = _dict(msg.get(msg_type)) if msg_type != "unknown" else {}
    if msg_type == "text":
        fields["text"] = _str(body.get("body"))
    elif msg_type == "interactive":
        kind = _str(body.get("type"))
        if kind == "button_reply":
            reply = _dict(body.get("button_reply"))
            fields["button_payload"] = _str(reply.get("id"))
            fields["button_title"] = _str(reply.get("title"))
        elif kind == "list_reply":
            reply = _dict(body.get("list_reply"))
            fields["list_id"] = _str(reply.get("id"))
            fields["list_title"] = _str(reply.get("title"))
            fields["list_description"] = _str(reply.get("description"))
        elif kind == "nfm_reply":
            fields["flow_response"] = _str(_dict(body.get("nfm_reply")).get("response_json"))
        else:
            problems.append(f"{path}: interactive reply of unknown kind")
    elif msg_type == "button":
        fields["button_payload"] = _str(body.get("payload"))
        fields["button_title"] = _str(body.get("text"))
    elif msg_type in MEDIA_TYPES:
        fields["media_id"] = _str(body.get("id"))
        fields["mime_type"] = _str(body.get("mime_type"))
        fields["sha256"] = _str(body.get("sha256"))
        fields["caption"] = _str(body.get("caption"))
        fields["filename"] = _str(body.get("filename"))
        fields["voice"] = bool(_bool(body.get("voice")))
        if not fields["media_id"]:
            problems.append(f"{path}: {msg_type} without a media id")
    elif msg_type == "reaction":
        fields["reaction_message_id"] = _str(body.get("message_id"))
        fields["reaction_emoji"] = _str(body.get("emoji"))
    elif msg_type == "location":
        fields["location"] = Location(
            latitude=_float(body.get("latitude")),
            longitude=_float(body.get("longitude")),
            name=_str(body.get("name")),
            address=_str(body.get("address")),
        )
    elif msg_type == "system":
        fields["text"] = _str(body.get("body"))
        fields["system_type"] = _str(body.get("type"))
        fields["new_wa_id"] = _str(body.get("wa_id"))
        fields["new_user_id"] = _str(body.get("user_id"))
    elif msg_type in {"unsupported", "unknown"}:
        if not fields["errors"]:
            problems.append(f"{path}: {msg_type} message without errors")
    # Other types (contacts, order, request_welcome, ...) are kept with their raw body.
    return InboundEvent(**fields)


def _status(
    st: dict[str, Any], value: dict[str, Any], waba_id: str | None, path: str, problems: list[str]
) -> StatusEvent | None:
    message_id = _str(st.get("id"))
    status = _str(st.get("status"))
    if not message_id or not status:
        problems.append(f"{path}: status without an id or a status, skipped")
        return None
    pricing = _dict(st.get("pricing"))
    conversation = _dict(st.get("conversation"))
    timestamp = parse_timestamp(st.get("timestamp"))
    if st.get("timestamp") is not None and timestamp is None:
        problems.append(f"{path}: unreadable timestamp")
    return StatusEvent(
        message_id=message_id,
        status=status,
        timestamp=timestamp,
        recipient_id=_str(st.get("recipient_id")),
        recipient_user_id=_str(st.get("recipient_user_id")),
        phone_number_id=_str(_dict(value.get("metadata")).get("phone_number_id")),
        waba_id=waba_id,
        errors=_errors(st.get("errors")),
        pricing_category=_str(pricing.get("category")),
        pricing_model=_str(pricing.get("pricing_model")),
        pricing_type=_str(pricing.get("type")),
        billable=_bool(pricing.get("billable")),
        conversation_id=_str(conversation.get("id")),
        conversation_origin=_str(_dict(conversation.get("origin")).get("type")),
        conversation_expires=parse_timestamp(conversation.get("expiration_timestamp")),
        biz_opaque_callback_data=_str(st.get("biz_opaque_callback_data")),
        raw=st,
    )


def parse_envelope(raw: bytes | str) -> ParsedEnvelope:
    """Every event in a webhook body; never raises, whatever `raw` holds."""
    result = ParsedEnvelope()
    try:
        _parse_into(raw, result)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        result.problems.append(f"body: parser failed ({type(exc).__name__})")
    return result


def _parse_into(raw: bytes | str, result: ParsedEnvelope) -> None:
    problems = result.problems
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError, TypeError) as exc:
        problems.append(f"body: not JSON ({type(exc).__name__})")
        return
    if not isinstance(document, dict):
        problems.append(f"body: top level is {type(document).__name__}, not an object")
        return
    kind = document.get("object")
    if kind != "whatsapp_business_account":
        problems.append("body: object is not whatsapp_business_account")
        # Keep going: the entries may still be readable, and dropping them would lose events.
    entries = document.get("entry")
    if not isinstance(entries, list):
        problems.append("body: no entry array")
        return
    for e_index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"entry[{e_index}]: not an object")
            continue
        waba_id = _str(entry.get("id"))
        changes = entry.get("changes")
        if not isinstance(changes, list):
            problems.append(f"entry[{e_index}]: no changes array")
            continue
        for c_index, change in enumerate(changes):
            path = f"entry[{e_index}].changes[{c_index}]"
            try:
                _parse_change(change, waba_id, path, result)
            except Exception as exc:  # noqa: BLE001 - one bad change must not hide the others
                problems.append(f"{path}: could not be parsed ({type(exc).__name__})")


def _parse_change(change: Any, waba_id: str | None, path: str, result: ParsedEnvelope) -> None:
    problems = result.problems
    if not isinstance(change, dict):
        problems.append(f"{path}: not an object")
        return
    field_name = _str(change.get("field"))
    value = change.get("value")
    if not isinstance(value, dict):
        problems.append(f"{path}: no value object")
        return
    if field_name != "messages":
        result.other_changes.append(
            OtherChange(field=field_name or "", value=value, waba_id=waba_id)
        )
        return
    result.errors.extend(_errors(value.get("errors")))
    for m_index, msg in enumerate(_list(value.get("messages"))):
        m_path = f"{path}.messages[{m_index}]"
        if not isinstance(msg, dict):
            problems.append(f"{m_path}: not an object")
            continue
        try:
            event = _inbound(msg, value, waba_id, m_path, problems)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{m_path}: could not be parsed ({type(exc).__name__})")
            continue
        if event is not None:
            result.inbound.append(event)
    for s_index, st in enumerate(_list(value.get("statuses"))):
        s_path = f"{path}.statuses[{s_index}]"
        if not isinstance(st, dict):
            problems.append(f"{s_path}: not an object")
            continue
        try:
            status = _status(st, value, waba_id, s_path, problems)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{s_path}: could not be parsed ({type(exc).__name__})")
            continue
        if status is not None:
            result.statuses.append(status)
    for key in ("messages", "statuses", "contacts", "errors"):
        if key in value and not isinstance(value[key], list):
            problems.append(f"{path}.{key}: not an array")
