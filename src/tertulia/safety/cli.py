"""`tertulia safety`: triage messages from the command line, and score the lexicon.

    tertulia safety classify < messages.txt > triage.jsonl
    tertulia safety evaluate tests/data/safety_dev.jsonl

`classify` writes exactly one JSON line per input line, in order, even for an empty line or
undecodable bytes, so its output can be pasted next to its input:

    {"text": "...", "categories": ["threat_to_partner"],
     "evidence": [{"category": "threat_to_partner", "text": "la mato", "rule": "threat.la_mato",
                   "start": 17, "end": 24}]}

`evidence` is a list of objects: the category, the words as the participant wrote them, the
lexicon rule that fired, and their character offsets in `text`. An "error" key appears only when
the classifier failed on that line (the message must then be held for a human).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import click

from tertulia.safety.classifier import CATEGORIES, Classifier, get_classifier


@click.group()
def safety() -> None:
    """Safety triage of participants' messages."""


@safety.command()
@click.option(
    "--classifier",
    "classifier_name",
    default="lexicon",
    show_default=True,
    help="Which registered classifier to use.",
)
def classify(classifier_name: str) -> None:
    """Read messages, one per line, from standard input; write one JSON object per line."""
    classifier = _classifier(classifier_name)
    classify_stream(classifier, sys.stdin.buffer, sys.stdout.buffer)


def classify_stream(classifier: Classifier, source: BinaryIO, sink: BinaryIO) -> int:
    """Triage each line of `source` into a JSON line on `sink`; returns the number of lines."""
    count = 0
    for raw in source:
        # Bytes that are not UTF-8 become U+FFFD rather than stopping the stream.
        text = raw.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")
        record = {"text": text, **classifier.classify(text).as_dict()}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        sink.write(line.encode("utf-8", errors="replace"))
        sink.flush()  # one message in, one verdict out, also through a pipe
        count += 1
    return count


@safety.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--classifier", "classifier_name", default="lexicon", show_default=True)
@click.option("--errors", "show_errors", is_flag=True, help="List missed and false alarms.")
def evaluate(paths: tuple[Path, ...], classifier_name: str, show_errors: bool) -> None:
    """Precision and recall on labelled JSONL files ({"text": ..., "categories": [...]})."""
    classifier = _classifier(classifier_name)
    for path in paths:
        scores = score(classifier, read_labelled(path))
        click.echo(f"{path} ({scores.messages} messages)")
        click.echo(scores.table())
        if show_errors:
            for kind, category, text in scores.mistakes:
                click.echo(f"  {kind} {category}: {text}")


def _classifier(name: str) -> Classifier:
    try:
        return get_classifier(name)
    except LookupError as exc:
        raise click.BadParameter(str(exc), param_hint="--classifier") from exc


# --- scoring (used by bench/safety.py and the regression test too) ---------------------------


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    categories: frozenset[str]


@dataclass
class Scores:
    """Per-category counts over a labelled set; "overall" pools them (micro-average)."""

    messages: int = 0
    true_positive: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    false_positive: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    false_negative: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    mistakes: list[tuple[str, str, str]] = field(default_factory=list)

    def precision(self, category: str | None = None) -> float:
        tp, fp = (
            self._counts(category, self.true_positive),
            self._counts(category, self.false_positive),
        )
        return tp / (tp + fp) if tp + fp else 1.0

    def recall(self, category: str | None = None) -> float:
        tp, fn = (
            self._counts(category, self.true_positive),
            self._counts(category, self.false_negative),
        )
        return tp / (tp + fn) if tp + fn else 1.0

    def support(self, category: str | None = None) -> int:
        return self._counts(category, self.true_positive) + self._counts(
            category, self.false_negative
        )

    @staticmethod
    def _counts(category: str | None, counts: dict[str, int]) -> int:
        return sum(counts.values()) if category is None else counts[category]

    def rows(self) -> list[tuple[str, int, float, float]]:
        rows = [(c, self.support(c), self.precision(c), self.recall(c)) for c in CATEGORIES]
        rows.append(("overall", self.support(), self.precision(), self.recall()))
        return rows

    def table(self) -> str:
        lines = ["| category | positives | precision | recall |", "|---|---:|---:|---:|"]
        lines += [f"| {c} | {n} | {p:.3f} | {r:.3f} |" for c, n, p, r in self.rows()]
        return "\n".join(lines)


def read_labelled(path: Path) -> list[Example]:
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        data: dict[str, Any] = json.loads(line)
        unknown = set(data["categories"]) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"{path}:{number}: unknown categories {sorted(unknown)}")
        examples.append(Example(data["text"], frozenset(data["categories"])))
    return examples


def score(classifier: Classifier, examples: Iterable[Example]) -> Scores:
    scores = Scores()
    for example in examples:
        scores.messages += 1
        found = set(classifier.classify(example.text).categories)
        for category in CATEGORIES:
            if category in found and category in example.categories:
                scores.true_positive[category] += 1
            elif category in found:
                scores.false_positive[category] += 1
                scores.mistakes.append(("false alarm", category, example.text))
            elif category in example.categories:
                scores.false_negative[category] += 1
                scores.mistakes.append(("missed", category, example.text))
    return scores


if __name__ == "__main__":  # pragma: no cover
    sys.exit(safety())
