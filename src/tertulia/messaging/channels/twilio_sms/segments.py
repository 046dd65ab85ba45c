"""How many SMS segments a text costs, the way carriers (and Twilio's bill) count them.

A text that fits the GSM-7 alphabet travels in 7-bit units: 160 in a single SMS, 153 per part
once it is split (the rest carries the concatenation header). Characters of the GSM-7 extension
table (``^ { } \\ [ ~ ] | €`` and form feed) take two units, an escape plus the character, and
are never split across two parts. One character outside GSM-7 switches the whole message to
UCS-2: 70 UTF-16 units in one SMS, 67 per part; a character outside the Basic Multilingual
Plane (most emoji) takes two units, which are never split.

This matters for Spanish: GSM-7 has é, É, ñ, Ñ, ü, Ü, ¿, ¡ and the grave accents, but not
á, í, ó, ú. Ordinary Peruvian Spanish ("está", "día") is therefore UCS-2 and costs more than
twice as many segments. `segment_info` reports which characters forced UCS-2 so that content
authors can see it. (Twilio's optional "smart encoding" would replace some of them; we count
what we send.)
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

GSM7 = "GSM-7"
UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # GSM-7 or UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of each segment, in units, at this length
    non_gsm_characters: tuple[str, ...] = ()  # what forced UCS-2, in order of appearance


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_widths(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def split_segments(text: str) -> list[str]:
    """The parts a carrier would receive, never splitting an escape pair or a surrogate pair."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    widths = _unit_widths(text, encoding)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    if sum(widths) <= single:
        return [text] if text else []
    parts: list[str] = []
    start, used = 0, 0
    for index, width in enumerate(widths):
        if used + width > multi:
            parts.append(text[start:index])
            start, used = index, 0
        used += width
    parts.append(text[start:])
    return parts


def segment_info(text: str) -> SegmentInfo:
    """Encoding, units and segment count of `text` as an SMS body."""
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC | GSM7_EXTENSION))
    encoding = UCS2 if non_gsm else GSM7
    units = sum(_unit_widths(text, encoding))
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    segments = len(split_segments(text))
    return SegmentInfo(
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=single if segments <= 1 else multi,
        non_gsm_characters=non_gsm,
    )


def count_segments(text: str) -> int:
    return segment_info(text).segments
