"""Safety triage: precision and recall per category on the labelled sets, and throughput.

    python bench/safety.py

The development set is what the lexicon was tuned on; the holdout set was written before the
lexicon and never tuned on, so its figures are the honest ones. Throughput is single-threaded,
over the labelled messages repeated, after the one-off lexicon compilation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench._results import record  # noqa: E402
from tertulia.safety.classifier import get_classifier  # noqa: E402
from tertulia.safety.cli import read_labelled, score  # noqa: E402
from tertulia.safety.normalize import normalize_word  # noqa: E402

SETS = {
    "development (tuned on)": ROOT / "tests" / "data" / "safety_dev.jsonl",
    "holdout (never tuned on)": ROOT / "tests" / "data" / "safety_holdout.jsonl",
}
TARGET_MESSAGES = 20_000


def main() -> None:
    started = time.perf_counter()
    classifier = get_classifier("lexicon")
    load_seconds = time.perf_counter() - started

    sections = []
    texts: list[str] = []
    for title, path in SETS.items():
        examples = read_labelled(path)
        texts += [example.text for example in examples]
        scores = score(classifier, examples)
        sections.append(f"### {title}: `{path.relative_to(ROOT)}`, {scores.messages} messages\n")
        sections.append(scores.table() + "\n")
        misses = [f"- {kind}, {category}: {text}" for kind, category, text in scores.mistakes]
        if misses:
            sections.append("Errors:\n\n" + "\n".join(misses) + "\n")

    normalize_word.cache_clear()
    batch = (texts * (TARGET_MESSAGES // len(texts) + 1))[:TARGET_MESSAGES]
    started = time.perf_counter()
    for text in batch:
        classifier.classify(text)
    elapsed = time.perf_counter() - started
    rate = len(batch) / elapsed
    sections.append(
        f"Throughput: {rate:,.0f} messages/s on one core ({len(batch):,} messages, "
        f"mean {sum(map(len, batch)) / len(batch):.0f} characters); "
        f"lexicon load and compile {load_seconds * 1000:.0f} ms. Target: at least 5,000/s.\n"
    )
    body = "\n".join(sections)
    print(body)
    record("safety", body, command="python bench/safety.py")


if __name__ == "__main__":
    main()
