from __future__ import annotations

import pytest

from tertulia.messaging.channels.twilio_sms.segments import (
    GSM7,
    UCS2,
    count_segments,
    segment_info,
    split_segments,
)


def test_gsm7_alphabet_has_127_characters_besides_escape() -> None:
    from tertulia.messaging.channels.twilio_sms.segments import GSM7_BASIC

    assert len(GSM7_BASIC) == 127 and "\x1b" not in GSM7_BASIC


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", GSM7, 0, 0),
        ("Hola", GSM7, 4, 1),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("¿Qué tal? ¡Ñandú no, ñu sí!", UCS2, 27, 1),  # "ú" is not GSM-7
        ("¿Que tal? ¡Año nuevo!", GSM7, 21, 1),  # ¿ ¡ ñ are
        ("€" * 80, GSM7, 160, 1),  # extension characters count double
        ("€" * 81, GSM7, 162, 2),
        ("a" * 70, GSM7, 70, 1),
        ("á" * 70, UCS2, 70, 1),
        ("á" * 71, UCS2, 71, 2),
        ("á" * 134, UCS2, 134, 2),
        ("á" * 135, UCS2, 135, 3),
        ("👍" * 35, UCS2, 70, 1),  # astral characters are two UTF-16 units
        ("👍" * 36, UCS2, 72, 2),
    ],
)
def test_known_counts(text: str, encoding: str, units: int, segments: int) -> None:
    info = segment_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert count_segments(text) == segments


def test_escape_pairs_are_not_split_across_segments() -> None:
    # 152 plain characters then "€": the pair does not fit in the first 153 units.
    parts = split_segments("a" * 152 + "€" + "b" * 10)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")


def test_surrogate_pairs_are_not_split() -> None:
    parts = split_segments("a" * 66 + "👍" + "b" * 10)
    assert parts[0] == "a" * 66 and parts[1].startswith("👍")


def test_reports_what_forced_unicode() -> None:
    info = segment_info("Respira, está bien. Mañana será otro día")
    assert info.encoding == UCS2
    assert info.non_gsm_characters == ("á", "í")
    assert info.per_segment == 70
    assert segment_info("x" * 200).per_segment == 153
