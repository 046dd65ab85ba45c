"""The normaliser folds the ways men spell on WhatsApp onto one matching key."""

from __future__ import annotations

import pytest

from tertulia.safety.normalize import normalize, normalize_word


def key(text: str) -> str:
    return normalize(text).text.strip()


@pytest.mark.parametrize(
    ("written", "proper"),
    [
        ("MÁTALA", "matala"),
        ("mataaaarla", "matarla"),
        ("mataarla", "matarla"),
        ("kiero", "quiero"),
        ("qiero", "quiero"),
        ("bida", "vida"),
        ("yorar", "llorar"),
        ("cayate", "cállate"),
        ("pege", "pegué"),
        ("ase", "hace"),
        ("sorra", "zorra"),
        ("webon", "huevón"),
        ("m4t4rla", "matarla"),
        ("voi", "voy"),
        ("señora", "senora"),
    ],
)
def test_spellings_fold_to_the_same_key(written: str, proper: str) -> None:
    assert normalize_word(written) == normalize_word(proper)


@pytest.mark.parametrize(
    ("sms", "full"),
    [
        ("q", "que"),
        ("k", "que"),
        ("xq", "porque"),
        ("pq", "porque"),
        ("tmb", "también"),
        ("tb", "también"),
        ("x", "por"),
        ("d", "de"),
        ("pa", "para"),
    ],
)
def test_sms_shorthand_is_expanded(sms: str, full: str) -> None:
    assert normalize_word(sms) == normalize_word(full)


def test_laughter_in_any_spelling_becomes_one_word() -> None:
    assert key("jajaja JAJAJJAJA jsjsjs xD jeje 😂") == "jaja jaja jaja jaja jaja jaja"


def test_words_that_look_like_laughter_are_kept() -> None:
    assert key("hijo") == normalize_word("hijo") != "jaja"


def test_sentence_ends_and_commas_stay_as_marks() -> None:
    assert key("la amo. te amo, ok!!") == "la amo . te amo , ok ."


def test_scores_keep_their_digits() -> None:
    assert key("los matamos 3-0") == "los matamos 3 0"


def test_meaningful_emojis_become_words() -> None:
    assert key("🔪") == normalize_word("cuchillo")


def test_evidence_spans_point_at_the_original_spelling() -> None:
    norm = normalize("Causa, la voy a MATAAAR xq si")
    start = norm.text.index("la ")
    end = norm.text.index(" porke")
    first, last = norm.original_span(start, end)
    assert norm.original[first:last] == "la voy a MATAAAR"


def test_empty_and_symbol_only_text_normalise_to_nothing() -> None:
    assert normalize("").text == ""
    assert normalize("!!! 🙃 ###").text == ". "
