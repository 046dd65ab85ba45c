"""The recruitment file: the bundled one is valid, and a mistake names where it is."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tertulia.recruitment import flow
from tertulia.recruitment.answers import age_band, choice_parse, number_parse
from tertulia.recruitment.config import ConfigError, config_load, config_parse

BUNDLED = (
    Path(__file__).resolve().parents[2]
    / "content"
    / "guy-talk"
    / "recruitment"
    / "es-PE"
    / "screening.yaml"
)


@pytest.fixture
def data() -> dict:
    return yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))


def test_the_bundled_conversation_is_valid_and_in_order() -> None:
    config = config_load(BUNDLED)
    assert config.consent_version == "2026-12-v1"
    assert flow.steps(config)[:6] == [
        "age",
        "relationship",
        "lives_in_country",
        "own_phone",
        "region",
        "send_time",
    ]
    assert flow.next_step(config, "send_time") == "consent"
    assert flow.next_step(config, "partner", partner_declined=True) == "talk_frequency"
    assert flow.next_step(config, "anger_control") == flow.DONE


def test_a_button_title_longer_than_whatsapp_allows_is_refused(data: dict) -> None:
    data["screening"][1]["options"][0]["title"] = "Sí, vivimos juntos hace años"
    with pytest.raises(
        ConfigError, match=r"screening\[1\]\.options\[0\]: title .* WhatsApp allows 20"
    ):
        config_parse(data)


def test_a_missing_text_and_a_missing_question_are_named(data: dict) -> None:
    broken = copy.deepcopy(data)
    del broken["texts"]["ineligible"]
    with pytest.raises(ConfigError, match="missing text\\(s\\): ineligible"):
        config_parse(broken)
    broken = copy.deepcopy(data)
    broken["screening"] = [q for q in broken["screening"] if q["key"] != "region"]
    with pytest.raises(ConfigError, match="needs a question with key 'region'"):
        config_parse(broken)


def test_answers_are_read_the_way_men_type_them(data: dict) -> None:
    config = config_parse(data)
    age = config.question("age")
    relationship = config.question("relationship")
    assert age is not None and relationship is not None
    assert [number_parse(t, age) for t in ["34", "tengo 34 años", "3 4", "abc", "150"]] == [
        34,
        34,
        None,
        None,
        None,
    ]
    picked = [
        choice_parse(t, relationship) for t in ["SI, VIVIMOS JUNTOS", "3", "convivimos", "quizá"]
    ]
    assert [o.key if o else None for o in picked] == ["cohabiting", "none", "cohabiting", None]
    assert [age_band(a, (18, 30, 45)) for a in (18, 29, 30, 44, 45, 70)] == [
        "18-29",
        "18-29",
        "30-44",
        "30-44",
        "45+",
        "45+",
    ]
