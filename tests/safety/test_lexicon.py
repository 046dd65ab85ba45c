"""The packaged lexicon loads, and every rule has what a safety lead needs to read it."""

from __future__ import annotations

from importlib import resources

from tertulia.safety import CATEGORIES
from tertulia.safety.classifier import load_lexicon


def test_the_lexicon_ships_inside_the_package() -> None:
    assert resources.files("tertulia.safety").joinpath("lexicon", "es.yaml").is_file()


def test_every_category_has_rules_and_ids_are_unique() -> None:
    rules = load_lexicon("es")["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    assert {rule["category"] for rule in rules} == set(CATEGORIES)
    for rule in rules:
        assert rule["id"].split(".")[0] in {
            "threat",
            "disclosure",
            "self_harm",
            "child",
            "harassment",
        }
