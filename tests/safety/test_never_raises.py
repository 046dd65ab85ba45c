"""Triage never raises and never loses a message, whatever arrives."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tertulia.safety import Triage, get_classifier
from tertulia.safety.classifier import LexiconClassifier

CLASSIFIER = get_classifier()
SPANISH = st.sampled_from(
    "la le voy a matar jerma q xq me muero de risa no nunca ya pegue , . ! 😂 🔪 pata 12 "
    "987654321 correa hijo cabro ~ * ( ) [ ] { } | < >".split()
)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_triage(text: str) -> None:
    triage = CLASSIFIER.classify(text)
    assert isinstance(triage, Triage)
    assert triage.error is None
    for evidence in triage.evidence:
        assert text[evidence.start : evidence.end] == evidence.text


@given(st.lists(SPANISH, max_size=40).map(" ".join))
@settings(max_examples=300, deadline=None)
def test_any_mix_of_lexicon_words_gives_a_triage(text: str) -> None:
    triage = CLASSIFIER.classify(text)
    assert triage.error is None
    assert set(triage.categories) == {evidence.category for evidence in triage.evidence}


def test_edge_inputs() -> None:
    junk = bytes(random.Random(6).getrandbits(8) for _ in range(10_000))
    for text in [
        "",
        " ",
        "\n\n",
        "😂" * 500,
        "la voy a matar " * 700,
        junk.decode("latin-1"),
        "\ud800 lone surrogate",
        "\x00\x01\x02",
        "ـــــ",
    ]:
        triage = CLASSIFIER.classify(text)
        assert triage.error is None
        assert len(triage.evidence) <= 50


def test_non_text_is_tolerated() -> None:
    assert CLASSIFIER.classify(None).categories == ()  # type: ignore[arg-type]
    assert CLASSIFIER.classify(b"la voy a matar").categories == (  # type: ignore[arg-type]
        "threat_to_partner",
    )


def test_an_internal_failure_is_reported_not_raised() -> None:
    classifier = LexiconClassifier({"rules": []})
    classifier._rules = None  # type: ignore[assignment]  # break it on purpose
    classifier._index.always = [0]
    triage = classifier.classify("hola")
    assert triage.error is not None
    assert triage.flagged
