"""Safety triage: a pluggable classifier and its default, a transparent Spanish (Peru) lexicon.

Every inbound message is scored before anything is relayed. A classifier returns a `Triage`: the
categories found (possibly none) and the evidence, so a facilitator sees *why* a message was held.
Classifiers never raise and never drop a message: on an internal error they return a Triage whose
`error` is set, which callers treat as "hold for a human" (fail closed).

The lexicon is a YAML file a program's safety lead can read and edit (see
docs/safety-lexicon.md). Its phrases use a small pattern language compiled to regular
expressions over the normalised text (see `normalize.py`):

    word        a word, matched after the same normalisation as the message
    stem*       any word starting with the stem ("golpe*" -> golpeé, golpeaba, golpearla)
    a|b c       alternatives (a sequence binds tighter than |)
    (a|b) c     grouping
    [a]         optional
    ~ or ~N     a gap of up to N words (3 by default) within one sentence
    {name}      one of the phrases listed under `vocab: name:`
    <num>       a number; <phone> a Peruvian mobile number
    , .         a comma; the end of a sentence
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import yaml

from tertulia.safety.normalize import Normalized, fold, normalize, normalize_word, strip_accents

# In order of urgency: the order categories are reported in.
CATEGORIES: tuple[str, ...] = (
    "threat_to_partner",
    "violence_disclosure",
    "self_harm",
    "child_at_risk",
    "harassment",
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a category was raised: the words as written, their place, and the rule that fired."""

    category: str
    text: str
    rule: str
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Triage:
    """A classifier's verdict on one message. No categories means nothing was found."""

    categories: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    # Set when the classifier failed on this message; callers must hold it for a human.
    error: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.categories) or self.error is not None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "categories": list(self.categories),
            "evidence": [item.as_dict() for item in self.evidence],
        }
        if self.error is not None:
            data["error"] = self.error
        return data


@runtime_checkable
class Classifier(Protocol):
    """Anything that can triage a message. Implementations must never raise."""

    name: str

    def classify(self, text: str) -> Triage: ...


class LexiconError(ValueError):
    """The lexicon file is malformed; raised when it is loaded, never while classifying."""


# --- the pattern language ------------------------------------------------------------------

Node = tuple[Any, ...]
_PATTERN_TOKEN = re.compile(r"\(|\)|\[|\]|\||\{[a-z0-9_]+\}|~\d*|<num>|<phone>|[^\s()\[\]|{}~<>]+")
_DEFAULT_GAP = 3
# Words too frequent to make a good index key for the pre-filter.
_COMMON = frozenset(
    normalize_word(word)
    for word in (
        "a al de del el en la las le les lo los me mi mis no por para que se su sus te tu un una"
        " y ya yo voy va es eres con si pero mas muy"
    ).split()
)


def _parse(pattern: str, source: str) -> Node:
    """Parse one lexicon pattern into a small tree: word, prefix, seq, alt, opt, gap, ref, raw."""
    tokens = _PATTERN_TOKEN.findall(pattern)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def parse_alt(closing: str | None) -> Node:
        branches = [parse_seq(closing)]
        while peek() == "|":
            take()
            branches.append(parse_seq(closing))
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def parse_seq(closing: str | None) -> Node:
        items: list[Node] = []
        while (piece := peek()) is not None and piece != "|" and piece != closing:
            take()
            if piece == "(":
                items.append(parse_alt(")"))
                _expect(")")
            elif piece == "[":
                items.append(("opt", parse_alt("]")))
                _expect("]")
            elif piece in (")", "]"):
                raise LexiconError(f"{source}: unbalanced {piece!r} in {pattern!r}")
            elif piece.startswith("{"):
                items.append(("ref", piece[1:-1]))
            elif piece.startswith("~"):
                items.append(("gap", int(piece[1:]) if len(piece) > 1 else _DEFAULT_GAP))
            elif piece == "<num>":
                items.append(("raw", r"\d+ "))
            elif piece == "<phone>":
                items.append(("raw", r"(?:9\d{8} |9\d\d \d\d\d \d\d\d )"))
            elif piece in (",", "."):
                items.append(("word", piece))
            elif piece.endswith("*"):
                items.append(("prefix", _stem(piece[:-1], source)))
            else:
                items.extend(("word", part) for part in normalize_word(piece).split())
        if not items:
            raise LexiconError(f"{source}: empty alternative in {pattern!r}")
        return items[0] if len(items) == 1 else ("seq", tuple(items))

    def _expect(token: str) -> None:
        if peek() != token:
            raise LexiconError(f"{source}: missing {token!r} in {pattern!r}")
        take()

    tree = parse_alt(None)
    if position != len(tokens):
        raise LexiconError(f"{source}: unexpected {tokens[position]!r} in {pattern!r}")
    return tree


def _stem(raw: str, source: str) -> str:
    """Fold a stem, refusing one whose folding changes once a letter follows ("ac*": "ac" folds
    to "ak" but "ace" to "ase"), since such a stem would silently miss words."""
    plain = strip_accents(raw)
    stem = fold(plain)
    if not stem:
        raise LexiconError(f"{source}: empty stem {raw!r}*")
    for vowel in "aeiou":
        if not fold(plain + vowel).startswith(stem):
            raise LexiconError(
                f"{source}: the stem {raw!r}* is ambiguous before {vowel!r}; "
                "end it before a c, g, qu, ll or y, or list the words"
            )
    return stem


class _Compiler:
    """Turns parsed patterns into regex source and pre-filter keys, resolving {vocab} names."""

    def __init__(self, vocab: dict[str, list[str]]) -> None:
        self._vocab_source = vocab
        self._vocab: dict[str, Node] = {}
        self._resolving: set[str] = set()

    def vocab(self, name: str, source: str) -> Node:
        if name in self._vocab:
            return self._vocab[name]
        if name not in self._vocab_source:
            raise LexiconError(f"{source}: unknown vocab {{{name}}}")
        if name in self._resolving:
            raise LexiconError(f"{source}: vocab {{{name}}} refers to itself")
        self._resolving.add(name)
        entries = self._vocab_source[name]
        branches = tuple(_parse(str(entry), f"vocab {name}") for entry in entries)
        self._resolving.discard(name)
        node: Node = ("alt", branches) if len(branches) > 1 else branches[0]
        self._vocab[name] = node
        return node

    def regex(self, node: Node, source: str) -> str:
        kind = node[0]
        if kind == "word":
            return re.escape(node[1]) + " "
        if kind == "prefix":
            return re.escape(node[1]) + r"\S* "
        if kind == "seq":
            return "".join(self.regex(item, source) for item in node[1])
        if kind == "alt":
            return "(?:" + "|".join(self.regex(item, source) for item in node[1]) + ")"
        if kind == "opt":
            return "(?:" + self.regex(node[1], source) + ")?"
        if kind == "gap":
            return rf"(?:\w+ ){{0,{node[1]}}}"
        if kind == "ref":
            return self.regex(self.vocab(node[1], source), source)
        return str(node[1])  # raw

    def anchor(self, node: Node, source: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """Words or stems of which at least one must be in any text the node matches."""
        kind = node[0]
        if kind == "word":
            return (frozenset([node[1]]), frozenset())
        if kind == "prefix":
            return (frozenset(), frozenset([node[1]]))
        if kind == "ref":
            return self.anchor(self.vocab(node[1], source), source)
        if kind == "alt":
            words: set[str] = set()
            stems: set[str] = set()
            for branch in node[1]:
                found = self.anchor(branch, source)
                if found is None:
                    return None
                words |= found[0]
                stems |= found[1]
            return (frozenset(words), frozenset(stems))
        if kind == "seq":
            options = [a for item in node[1] if (a := self.anchor(item, source)) is not None]
            return min(options, key=_anchor_cost) if options else None
        return None

    def compile(self, patterns: Iterable[str], source: str) -> re.Pattern[str]:
        parts = [self.regex(_parse(p, source), source) for p in patterns]
        # Every normalised token is followed by a space, so a phrase starts after a space or at
        # the beginning, and ends with its own trailing space.
        return re.compile(r"(?<![^ ])(?:" + "|".join(parts) + ")")


def _anchor_cost(anchor: tuple[frozenset[str], frozenset[str]]) -> int:
    words, stems = anchor
    cost = sum(100 if word in _COMMON else 1 for word in words)
    return cost + sum(30 if len(stem) <= 3 else 3 for stem in stems)


# --- the lexicon classifier -------------------------------------------------------------------

_NEGATORS = frozenset(normalize_word(w) for w in ("no", "nunca", "jamas", "ni", "tampoco"))
# After a negator, these mean the act happened before: "no le vuelvo a pegar", "nunca más".
_NOT_NEGATING = frozenset(normalize_word(w) for w in ("vuelvo", "volvere", "volveria", "mas"))
_QUESTION = frozenset(normalize_word(w) for w in ("por", "que", "como", "cuando", "si", "ni"))
_YA = normalize_word("ya")
_SE = normalize_word("se")
_NEGATION_WINDOW = 3
# Enough for a facilitator to see why; a pasted wall of text must not bury the inbox.
_EVIDENCE_PER_CATEGORY = 10


@dataclass(slots=True)
class _Rule:
    id: str
    category: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None
    unless_sentence: re.Pattern[str] | None = None
    unless_before: re.Pattern[str] | None = None
    requires: re.Pattern[str] | None = None
    negatable: bool = True


@dataclass(slots=True)
class _Index:
    """Maps message words to the rules that could match them, so that a typical message runs a
    handful of regexes rather than all of them."""

    words: dict[str, list[int]] = field(default_factory=dict)
    stems: dict[str, list[int]] = field(default_factory=dict)
    stem_lengths: tuple[int, ...] = ()
    always: list[int] = field(default_factory=list)

    def candidates(self, keys: Iterable[str]) -> list[int]:
        found: set[int] = set(self.always)
        for key in keys:
            found.update(self.words.get(key, ()))
            for length in self.stem_lengths:
                if len(key) >= length:
                    found.update(self.stems.get(key[:length], ()))
        return sorted(found)


class LexiconClassifier:
    """The default classifier: phrases and context rules from a YAML lexicon."""

    name = "lexicon"

    def __init__(self, lexicon: dict[str, Any], *, source: str = "lexicon") -> None:
        if not isinstance(lexicon, dict):
            raise LexiconError(f"{source}: expected a mapping at the top level")
        vocab = lexicon.get("vocab") or {}
        compiler = _Compiler({str(k): _as_list(v) for k, v in vocab.items()})
        self.version = str(lexicon.get("version", ""))
        self._safe: list[tuple[str, re.Pattern[str]]] = []
        for entry in lexicon.get("safe_phrases") or []:
            entry_id = _required(entry, "id", source)
            match = _as_list(_required(entry, "match", source))
            self._safe.append((entry_id, compiler.compile(match, entry_id)))
        self._rules: list[_Rule] = []
        self._index = _Index()
        seen: set[str] = set()
        stem_lengths: set[int] = set()
        for entry in lexicon.get("rules") or []:
            rule = self._rule(entry, compiler, source)
            if rule.id in seen:
                raise LexiconError(f"{source}: duplicate rule id {rule.id}")
            seen.add(rule.id)
            position = len(self._rules)
            self._rules.append(rule)
            anchors = [
                compiler.anchor(_parse(p, rule.id), rule.id) for p in _as_list(entry["match"])
            ]
            if any(anchor is None for anchor in anchors):
                self._index.always.append(position)
                continue
            for words, stems in anchors:  # type: ignore[misc]
                for word in words:
                    self._index.words.setdefault(word, []).append(position)
                for stem in stems:
                    self._index.stems.setdefault(stem, []).append(position)
                    stem_lengths.add(len(stem))
        self._index.stem_lengths = tuple(sorted(stem_lengths))

    @staticmethod
    def _rule(entry: Any, compiler: _Compiler, source: str) -> _Rule:
        rule_id = _required(entry, "id", source)
        category = _required(entry, "category", rule_id)
        if category not in CATEGORIES:
            raise LexiconError(f"{rule_id}: unknown category {category!r}")

        def optional(key: str) -> re.Pattern[str] | None:
            value = entry.get(key)
            return compiler.compile(_as_list(value), f"{rule_id}.{key}") if value else None

        return _Rule(
            id=rule_id,
            category=category,
            pattern=compiler.compile(_as_list(_required(entry, "match", rule_id)), rule_id),
            unless=optional("unless"),
            unless_sentence=optional("unless_sentence"),
            unless_before=optional("unless_before"),
            requires=optional("requires"),
            negatable=bool(entry.get("negatable", True)),
        )

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self._rules]

    def classify(self, text: str) -> Triage:
        try:
            return self._classify(_as_text(text))
        except Exception as exc:  # a classifier must never take the inbox down
            return Triage(error=f"{type(exc).__name__}: {exc}")

    def _classify(self, text: str) -> Triage:
        norm = normalize(text)
        plain = norm.text
        masked = self._mask(plain)
        found: dict[tuple[str, int, int], Evidence] = {}
        shown = dict.fromkeys(CATEGORIES, 0)
        for position in self._index.candidates(set(masked.split())):
            rule = self._rules[position]
            context_checked = False
            for match in rule.pattern.finditer(masked):
                if shown[rule.category] >= _EVIDENCE_PER_CATEGORY:
                    break
                start, end = match.start(), match.end() - 1  # without the trailing space
                if not context_checked:
                    # Message-wide context is looked at once, and only when the phrase is there.
                    if rule.unless is not None and rule.unless.search(plain):
                        break
                    if rule.requires is not None and not rule.requires.search(plain):
                        break
                    context_checked = True
                if rule.negatable and self._negated(norm, start):
                    continue
                if rule.unless_sentence is not None or rule.unless_before is not None:
                    begin = plain.rfind(". ", 0, start)
                    begin = 0 if begin < 0 else begin + 2
                    if rule.unless_before is not None and rule.unless_before.search(
                        plain, begin, start
                    ):
                        continue
                    if rule.unless_sentence is not None:
                        finish = plain.find(". ", end)
                        finish = len(plain) if finish < 0 else finish + 1
                        if rule.unless_sentence.search(plain, begin, finish):
                            continue
                first, last = norm.original_span(start, end)
                key = (rule.category, first, last)
                if key not in found and shown[rule.category] < _EVIDENCE_PER_CATEGORY:
                    shown[rule.category] += 1
                    found[key] = Evidence(rule.category, text[first:last], rule.id, first, last)
        if not found:
            return Triage()
        evidence = sorted(found.values(), key=lambda e: (CATEGORIES.index(e.category), e.start))
        categories = tuple(c for c in CATEGORIES if any(e.category == c for e in evidence))
        return Triage(categories=categories, evidence=tuple(evidence))

    def _mask(self, plain: str) -> str:
        """Blank out idioms and other safe phrases, keeping every offset where it was."""
        masked = plain
        for _, pattern in self._safe:
            if pattern.search(masked) is None:
                continue
            masked = pattern.sub(lambda m: re.sub(r"\S", "#", m.group(0)), masked)
        return masked

    @staticmethod
    def _negated(norm: Normalized, start: int) -> bool:
        """Whether a negator shortly before the phrase denies it ("nunca le he pegado").

        "ya no", "nunca más" and "no le vuelvo a" do not count: they say it used to happen,
        which is a disclosure (safety first). "no sé por qué ..." does not deny either.
        """
        keys = norm.keys
        index = norm.token_at(start)
        for back in range(1, _NEGATION_WINDOW + 1):
            position = index - back
            if position < 0 or keys[position] in (".", ","):
                return False
            if keys[position] not in _NEGATORS:
                continue
            if position > 0 and keys[position - 1] == _YA:
                return False
            # The phrase's own first words count too: "no le vuelvo a levantar la mano".
            between = keys[position + 1 : index + 3]
            if any(key in _NOT_NEGATING for key in between):
                return False
            if keys[position + 1 : position + 2] == (_SE,) and (
                keys[position + 2 : position + 3] and keys[position + 2] in _QUESTION
            ):
                return False
            return True
        return False


def _as_text(value: object) -> str:
    """Callers should pass str; bytes and None are tolerated rather than crashing triage."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def _required(entry: Any, key: str, source: str) -> str:
    if not isinstance(entry, dict) or not entry.get(key):
        raise LexiconError(f"{source}: entry without {key!r}: {entry!r}")
    return str(entry[key]) if key != "match" else entry[key]


def load_lexicon(locale: str = "es") -> dict[str, Any]:
    """The packaged lexicon for a locale, as parsed YAML."""
    path = resources.files("tertulia.safety").joinpath("lexicon", f"{locale}.yaml")
    # libyaml's loader, where PyYAML was built with it: seven times faster on this file.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    if not isinstance(data, dict):
        raise LexiconError(f"lexicon/{locale}.yaml: expected a mapping")
    return data


# --- the registry -----------------------------------------------------------------------------

_FACTORIES: dict[str, Callable[[], Classifier]] = {
    "lexicon": lambda: LexiconClassifier(load_lexicon("es"), source="lexicon/es.yaml"),
}


_INSTANCES: dict[str, Classifier] = {}


def register_classifier(name: str, factory: Callable[[], Classifier]) -> None:
    """Make another classifier (a model, a remote service) available to `get_classifier`."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def configured_classifier() -> Classifier:
    """The classifier the settings name (TERTULIA_SAFETY_CLASSIFIER; the lexicon by default)."""
    from django.conf import settings

    return get_classifier(getattr(settings, "TERTULIA_SAFETY_CLASSIFIER", "lexicon"))


def get_classifier(name: str = "lexicon") -> Classifier:
    """The named classifier, built once per process (the lexicon is parsed and compiled once)."""
    if name not in _INSTANCES:
        try:
            factory = _FACTORIES[name]
        except KeyError:
            known = ", ".join(sorted(_FACTORIES))
            raise LookupError(f"unknown classifier {name!r}; known: {known}") from None
        _INSTANCES[name] = factory()
    return _INSTANCES[name]
