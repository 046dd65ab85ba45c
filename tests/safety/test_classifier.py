"""Each category is found with its evidence, and the usual false alarms are not raised."""

from __future__ import annotations

import pytest

from tertulia.safety import CATEGORIES, Classifier, Triage, get_classifier
from tertulia.safety.classifier import LexiconClassifier, LexiconError, register_classifier


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return get_classifier()


def categories(classifier: Classifier, text: str) -> set[str]:
    return set(classifier.classify(text).categories)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("la voy a matar a esa desgraciada", "threat_to_partner"),
        ("si me saca la vuelta la reviento", "threat_to_partner"),
        ("causa estoy q la mataaaarrr a mi flaca", "threat_to_partner"),
        ("le voy a meter un cate a mi jerma", "threat_to_partner"),
        ("me dan ganas de ahorcarla", "threat_to_partner"),
        ("le revisé el celular y no la dejo salir", "violence_disclosure"),
        ("la empujé", "violence_disclosure"),
        ("la obligué", "violence_disclosure"),
        ("se me fue la mano con mi señora", "violence_disclosure"),
        ("antes le pegaba a mi jerma, ya no", "violence_disclosure"),
        ("ya no quiero vivir", "self_harm"),
        ("me voy a tirar del puente", "self_harm"),
        ("kiero matarme", "self_harm"),
        ("mis hijos estarian mejor sin mi", "self_harm"),
        ("le di con la correa a mi hijo", "child_at_risk"),
        ("al chibolo le meti un cate", "child_at_risk"),
        ("dejo a los chicos solos toda la noche", "child_at_risk"),
        ("callate cabro de mierda", "harassment"),
        ("pata 12 eres un lorna", "harassment"),
        ("se donde vives pata 8", "harassment"),
        ("el numero del pata 40 es 987654321", "harassment"),
    ],
)
def test_category_is_found(classifier: Classifier, text: str, category: str) -> None:
    assert category in categories(classifier, text)


@pytest.mark.parametrize(
    "text",
    [
        # football
        "los matamos 3-0",
        "le pegó al arco de media cancha",
        "q partidazo, los reventamos",
        "la bajó con el pecho y la mató de zurda",
        "si pierde peru me tiro del puente jaja",
        # idioms
        "me muero de risa",
        "me mata de risa el chibolo",
        "mátame si miento pero hoy cociné yo",
        "me muero de hambre",
        "me voy a pegar una siesta",
        "esa canción me mata",
        "me quiero morir de la vergüenza",
        "me mato trabajando por mis hijos",
        "se me fue la mano con la sal",
        "mi jerma me mata con su comida",
        "mi flaca me va a matar si llego tarde jaja",
        # negations and healthy talk
        "nunca le he pegado a mi esposa",
        "jamás la forzaría a nada",
        "si ella no quiere, no la obligo",
        "hicimos el presupuesto juntos y lavé los platos",
        # other people's violence, news
        "leí en el diario que un tipo la mató a su pareja",
        "mi viejo le pegaba a mi mamá, no quiero ser así",
        # friendly slang
        "oe huevón q tal el partido",
        "causa eres un crack",
        "ctm se me quemó el arroz",
    ],
)
def test_false_alarm_contexts_are_not_flagged(classifier: Classifier, text: str) -> None:
    assert categories(classifier, text) == set()


def test_stopping_is_still_a_disclosure(classifier: Classifier) -> None:
    """A man telling what he learned to stop doing still discloses it (safety first)."""
    assert "violence_disclosure" in categories(classifier, "ya no le pego a mi flaca")
    assert "violence_disclosure" in categories(classifier, "nunca más le pego, lo prometo")
    assert "violence_disclosure" in categories(classifier, "no le vuelvo a levantar la mano")


def test_evidence_shows_the_words_as_written(classifier: Classifier) -> None:
    text = "Causa, LA VOY A MATAAAR si me engaña"
    triage = classifier.classify(text)
    assert triage.categories == ("threat_to_partner",)
    (evidence,) = triage.evidence
    assert evidence.text == "LA VOY A MATAAAR"
    assert text[evidence.start : evidence.end] == evidence.text
    assert evidence.rule.startswith("threat.")


def test_several_categories_are_reported_in_order_of_urgency(classifier: Classifier) -> None:
    triage = classifier.classify("la mato y despues me mato yo")
    assert triage.categories == ("threat_to_partner", "self_harm")


def test_nothing_found_is_an_empty_triage(classifier: Classifier) -> None:
    triage = classifier.classify("buenos días patas")
    assert triage == Triage()
    assert not triage.flagged
    assert triage.as_dict() == {"categories": [], "evidence": []}


def test_the_default_classifier_satisfies_the_protocol(classifier: Classifier) -> None:
    assert isinstance(classifier, Classifier)
    assert classifier.name == "lexicon"
    assert get_classifier("lexicon") is classifier


def test_another_classifier_can_be_plugged_in() -> None:
    class Everything:
        name = "everything"

        def classify(self, text: str) -> Triage:
            return Triage(categories=CATEGORIES)

    register_classifier("everything", Everything)
    assert get_classifier("everything").classify("hola").categories == CATEGORIES


def test_an_unknown_classifier_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="unknown classifier 'nope'"):
        get_classifier("nope")


def test_an_ambiguous_stem_is_refused_when_the_lexicon_loads() -> None:
    lexicon = {"rules": [{"id": "x", "category": "self_harm", "match": "ac*"}]}
    with pytest.raises(LexiconError, match="ambiguous"):
        LexiconClassifier(lexicon)


def test_an_unknown_category_is_refused() -> None:
    lexicon = {"rules": [{"id": "x", "category": "sadness", "match": "triste"}]}
    with pytest.raises(LexiconError, match="unknown category"):
        LexiconClassifier(lexicon)


def test_a_small_lexicon_uses_vocab_gaps_and_options() -> None:
    lexicon = {
        "vocab": {"partner": ["esposa", "jerma"]},
        "safe_phrases": [{"id": "idiom", "match": "me muero de risa"}],
        "rules": [
            {"id": "a", "category": "threat_to_partner", "match": "voy a ~3 {partner}"},
            {"id": "b", "category": "self_harm", "match": "me muero [ya]"},
        ],
    }
    classifier = LexiconClassifier(lexicon)
    assert classifier.classify("voy a ver a mi jerma").categories == ("threat_to_partner",)
    assert classifier.classify("voy a ver. mi jerma").categories == ()
    assert classifier.classify("me muero ya").categories == ("self_harm",)
    assert classifier.classify("me muero de risa").categories == ()
