"""Normalisation of WhatsApp Spanish (Peru) for the lexicon classifier.

Men write fast, on a phone: no accents, "q" for "que", "xq" for "porque", "mataaarla", "kiero",
"bida". Rather than list every spelling in the lexicon, the message *and* every lexicon phrase go
through the same folding, so one entry in proper Spanish ("quiero matarla") matches all of them.

The folding is lossy on purpose (it is a matching key, never shown to anybody):

1. lower case, accents and the tilde dropped ("Mátala" -> "matala", "niño" -> "nino");
2. SMS spellings expanded per word ("q" -> "que", "xq" -> "porque", "tmb" -> "tambien");
3. sounds that Peruvians spell interchangeably merged: c/qu/k, s/z/c(e,i), b/v, g/j/gu(e,i),
   ll/y, a silent h, a final y -> i;
4. runs of a repeated letter collapsed ("mataaarla", "perro" -> "pero").

Each token keeps its span in the original text, so evidence is shown to the facilitator exactly
as the participant wrote it.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Words written as SMS shorthand, keyed by their accent-free, lower-case, de-duplicated form.
# Expanded before the phonetic folding, so they fold exactly like the full word would.
SMS: dict[str, str] = {
    "q": "que",
    "k": "que",
    "ke": "que",
    "qe": "que",
    "xq": "porque",
    "xk": "porque",
    "pq": "porque",
    "pk": "porque",
    "porq": "porque",
    "porke": "porque",
    "xke": "porque",
    "xque": "porque",
    "tmb": "tambien",
    "tb": "tambien",
    "tbn": "tambien",
    "tmbn": "tambien",
    "tambn": "tambien",
    "x": "por",
    "d": "de",
    "pa": "para",
    "pal": "para el",
    "toy": "estoy",
    "toi": "estoy",
    "tas": "estas",
    "ta": "esta",
    "tamos": "estamos",
    "sta": "esta",
    "nd": "nada",
    "bn": "bien",
    "dnd": "donde",
    "kmo": "como",
    "cmo": "como",
    "nose": "no se",
    "aver": "a ver",
    "osea": "o sea",
    "dsp": "despues",
    "dps": "despues",
    "vdd": "verdad",
    "msj": "mensaje",
    "mrd": "mierda",
    "ctm": "conchatumadre",
    "csm": "conchasumadre",
    "ptm": "puta madre",
    "hdp": "hijo de puta",
    "tmr": "tu madre",
    "xfa": "por favor",
    "porfa": "por favor",
    "kien": "quien",
    "xd": "jaja",
}

# Emojis that carry meaning for triage become words; all other symbols are dropped. Laughter
# becomes "jaja" so that joke contexts can be written once.
EMOJI: dict[str, str] = {
    "\U0001f602": "jaja",  # face with tears of joy
    "\U0001f923": "jaja",  # rolling on the floor laughing
    "\U0001f606": "jaja",  # grinning squinting face
    "\U0001f605": "jaja",  # grinning face with sweat
    "\U0001f639": "jaja",  # cat with tears of joy
    "\U0001f52a": "cuchillo",  # kitchen knife
    "\U0001f5e1": "cuchillo",  # dagger
    "\U0001f52b": "pistola",  # pistol
    "\U0001faa2": "soga",  # knot
    "\u26bd": "futbol",  # soccer ball
    "\U0001f945": "futbol",  # goal net
}

# Clause boundaries stay in the normalised text as "." and ",", so that a gap in a phrase never
# runs across two sentences.
_TOKEN = re.compile(
    r"[^\W_]+|[.!?;:\n\r]+|,|"
    + "|".join(re.escape(e) for e in sorted(EMOJI, key=len, reverse=True))
)
_SENTENCE_END = re.compile(r"[.!?;:\n\r]+")
_LAUGH = re.compile(
    r"a?(?:j+a+){2,}j*|(?:j+e+){2,}j*|(?:j+i+){2,}j*|(?:h+a+){2,}h*|(?:h+e+){2,}h*"
    r"|j[ajs]*s[ajs]*|x+d+"
)
_LEET = str.maketrans({"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "@": "a"})
_RUNS3 = re.compile(r"([a-z])\1{2,}")
_RUNS2 = re.compile(r"([a-z])\1+")
_FOLD = re.compile(r"qu(?=[ei])|gu(?=[ei])|ch|ll|[cqzgvwh]|y$")
_FOLD_MAP = {"qu": "k", "gu": "j", "ch": "ch", "ll": "y", "q": "k", "z": "s", "g": "j"}
_FOLD_MAP.update({"v": "b", "w": "u", "h": "", "y": "i"})


def strip_accents(text: str) -> str:
    """Lower case without accents or tilde: "Señora" -> "senora"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _fold_match(match: re.Match[str]) -> str:
    found = match.group(0)
    if found == "c":
        # Soft before e/i ("hacer" sounds like "aser"), hard elsewhere ("casa" like "kasa").
        following = match.string[match.end() : match.end() + 1]
        return "s" if following in ("e", "i") else "k"
    return _FOLD_MAP[found]


def fold(word: str) -> str:
    """The phonetic key of one accent-free, lower-case word (no SMS expansion)."""
    word = _RUNS3.sub(r"\1\1", word)
    word = _FOLD.sub(_fold_match, word)
    return _RUNS2.sub(r"\1", word)


@lru_cache(maxsize=65536)
def normalize_word(raw: str) -> str:
    """The matching key of one word as typed; may be several words ("xq" -> "porke") or ""."""
    word = strip_accents(raw)
    if any(ch.isdigit() for ch in word) and sum(ch.isalpha() for ch in word) >= 2:
        word = word.translate(_LEET)  # "m4t4rla"; scores like "3x0" keep their digits
    if word.isdigit():
        return word
    key = _RUNS2.sub(r"\1", word)
    if key in SMS:
        word = SMS[key]
    elif _LAUGH.fullmatch(key):
        word = "jaja"
    return " ".join(filter(None, (fold(part) for part in word.split())))


@dataclass(frozen=True, slots=True)
class Token:
    """One normalised word (or "." / "," clause mark) and its span in the original text."""

    key: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Normalized:
    """A message as the lexicon sees it.

    `text` is the tokens' keys joined by single spaces with one trailing space, so every
    compiled phrase can end each word with a space and need no word-boundary look-arounds.
    """

    original: str
    text: str
    tokens: tuple[Token, ...]
    offsets: tuple[int, ...]  # where each token starts in `text`
    keys: tuple[str, ...]  # each token's key, for looking a few words back

    def token_at(self, position: int) -> int:
        """Index of the token covering `position` of the normalised text."""
        return max(bisect.bisect_right(self.offsets, position) - 1, 0)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text behind normalised `text[start:end]`."""
        if not self.tokens:
            return (0, 0)
        first = self.tokens[self.token_at(start)]
        last = self.tokens[self.token_at(max(end - 1, start))]
        return (first.start, last.end)


def normalize(text: str) -> Normalized:
    """Tokenise and fold a message; total on any string."""
    tokens: list[Token] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        if raw == ",":
            key = ","
        elif _SENTENCE_END.fullmatch(raw):
            key = "."
        elif raw in EMOJI:
            key = normalize_word(EMOJI[raw])
        else:
            key = normalize_word(raw)
        if not key:
            continue
        for part in key.split(" "):
            tokens.append(Token(part, match.start(), match.end()))
    offsets: list[int] = []
    position = 0
    for token in tokens:
        offsets.append(position)
        position += len(token.key) + 1
    normalized = "".join(token.key + " " for token in tokens)
    keys = tuple(token.key for token in tokens)
    return Normalized(text, normalized, tuple(tokens), tuple(offsets), keys)
