"""The labelled development set meets the targets, so a lexicon edit that loses them fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tertulia.safety import CATEGORIES, get_classifier
from tertulia.safety.cli import Scores, read_labelled, score

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def dev() -> Scores:
    return score(get_classifier(), read_labelled(DATA / "safety_dev.jsonl"))


def test_the_development_set_is_large_and_covers_every_category(dev: Scores) -> None:
    assert dev.messages >= 400
    assert all(dev.support(category) >= 30 for category in CATEGORIES)


@pytest.mark.parametrize("category", ["threat_to_partner", "self_harm"])
def test_recall_on_the_most_urgent_categories(dev: Scores, category: str) -> None:
    assert dev.recall(category) >= 0.95, dev.table()


def test_overall_precision(dev: Scores) -> None:
    assert dev.precision() >= 0.8, dev.table()


def test_no_category_collapses(dev: Scores) -> None:
    for category in CATEGORIES:
        assert dev.recall(category) >= 0.85, dev.table()
        assert dev.precision(category) >= 0.8, dev.table()


def test_the_holdout_is_kept_apart(dev: Scores) -> None:
    dev_texts = {example.text for example in read_labelled(DATA / "safety_dev.jsonl")}
    holdout = read_labelled(DATA / "safety_holdout.jsonl")
    assert len(holdout) >= 100
    assert not dev_texts & {example.text for example in holdout}
