"""Reading his answers: a number, a choice by button, number, title or alias. Pure functions;
None means "not understood", and the conversation asks again."""

from __future__ import annotations

import re
import unicodedata

from text_to_num import alpha2digit

from tertulia.recruitment.config import Option, Question

BUTTON_PREFIX = "rc"


def fold(text: str) -> str:
    """'  Sí, ES MÍO!! ' → 'si es mio': no accents, lower case, single spaces."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def button_id(question: str, option: str) -> str:
    return f"{BUTTON_PREFIX}:{question}:{option}"


def button_parse(value: str) -> tuple[str, str] | None:
    """'rc:age:yes' → ('age', 'yes'); None for a button that is not ours."""
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[0] != BUTTON_PREFIX:
        return None
    return parts[1], parts[2]


# Words that make a number approximate: "treinta y pico", "unos 40", "casi 30" are not an age.
VAGUE = {"pico", "tantos", "algo", "casi", "unos", "como", "aprox", "aproximadamente", "mas"}
# alpha2digit's languages (text2num): Spanish first, others for men who write in them.
LANGUAGES = {"es", "en", "pt", "fr", "de", "it", "nl"}


def number_parse(text: str, question: Question, *, language: str = "es") -> int | None:
    """The one whole number in his answer, within the question's range: 'tengo 34 años', and
    in words, 'treinta y dos' (text2num's alpha2digit). None when it is approximate or there
    are several."""
    words = set(fold(text).split())
    if words & VAGUE:
        return None
    lang = (language or "es").split("-")[0].lower()
    spelled = alpha2digit(text, lang if lang in LANGUAGES else "es")
    numbers = re.findall(r"\d+", spelled)
    if len(numbers) != 1:
        return None
    value = int(numbers[0])
    return value if question.min <= value <= question.max else None


def choice_parse(text: str, question: Question) -> Option | None:
    """The option he chose by typing its number, title, key or one of its aliases."""
    typed = fold(text)
    if not typed:
        return None
    if typed.isdigit():
        index = int(typed) - 1
        return question.options[index] if 0 <= index < len(question.options) else None
    exact = [
        o
        for o in question.options
        if typed in {fold(o.title), fold(o.key), *(fold(a) for a in o.aliases)}
    ]
    if len(exact) == 1:
        return exact[0]
    return None


def option_by_key(question: Question, key: str) -> Option | None:
    return next((o for o in question.options if o.key == key), None)


def age_band(age: int, bands: tuple[int, ...]) -> str:
    """34 with bands (18, 30, 45) → '30-44'; the last band is open: '45+'."""
    label = f"<{bands[0]}"
    for i, low in enumerate(bands):
        if age >= low:
            label = f"{low}-{bands[i + 1] - 1}" if i + 1 < len(bands) else f"{low}+"
    return label
