"""The recruitment conversation of one program, read from
`<content>/<program>/recruitment/<locale>/screening.yaml`: screening questions and their
eligibility rules, the versioned consent text, the optional partner-contact consent, the
baseline questions and every text he is sent. Checked when read: a mistake names its place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from string import Formatter
from typing import Any

import yaml
from django.conf import settings

MAX_BUTTONS = 3  # WhatsApp reply buttons per message
MAX_TITLE = 20  # characters of a reply button's title
TEXT_KEYS = (
    "welcome",
    "invalid",
    "needs_person",
    "ineligible",
    "ineligible_closing",
    "declined",
    "partner_thanks",
    "partner_skipped",
    "partner_invalid_phone",
    "partner_own_phone",
    "baseline_intro",
    "ready",
    "already_enrolled",
    "already_screened",
    "randomized_program",
    "randomized_control",
    "cohort_opened",
    "returned",
)
# What the texts told after randomization may name: the date his group starts (at the latest,
# before his cohort opens), its clock time, and the time of day he chose in his words.
PLACEHOLDERS = {"fecha", "hora", "horario"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Option:
    key: str
    title: str
    aliases: tuple[str, ...] = ()
    eligible: bool = True
    cohabiting: str = ""  # for the relationship question: "yes" / "no"
    time: str = ""  # for the send-time question: the clock time it stands for, "19:00"


@dataclass(frozen=True)
class Question:
    key: str
    kind: str  # number | choice
    prompt: str
    invalid: str = ""
    options: tuple[Option, ...] = ()
    min: int = 0
    max: int = 0
    eligible_min: int | None = None

    @property
    def uses_buttons(self) -> bool:
        return self.kind == "choice" and len(self.options) <= MAX_BUTTONS


@dataclass(frozen=True)
class RecruitmentConfig:
    program: str
    locale: str
    country: str
    age_bands: tuple[int, ...]
    texts: dict[str, str]
    screening: tuple[Question, ...]
    consent_version: str
    consent_parts: tuple[str, ...]
    consent: Question
    partner_enabled: bool
    partner_version: str
    partner: Question | None
    partner_name_prompt: str
    partner_phone_prompt: str
    baseline_instrument: str
    baseline: tuple[Question, ...]
    # Whether a man who wrote BAJA during recruitment may come back with VOLVER.
    allow_return: bool = False
    source: str = field(default="", compare=False)

    def question(self, key: str) -> Question | None:
        for q in (*self.screening, self.consent, *self.baseline):
            if q.key == key:
                return q
        if self.partner is not None and key == self.partner.key:
            return self.partner
        return None


def config_path(program: str, locale: str = "es-PE") -> Path:
    return Path(settings.TERTULIA_CONTENT_DIR) / program / "recruitment" / locale / "screening.yaml"


def recruitment_config(program: str, locale: str = "es-PE") -> RecruitmentConfig | None:
    """The program's recruitment conversation, or None when the program has none."""
    path = config_path(program, locale)
    if not path.is_file():
        return None
    return _load_cached(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> RecruitmentConfig:
    return config_load(Path(path))


def config_load(path: Path) -> RecruitmentConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from exc
    return config_parse(data, source=str(path))


def config_parse(data: Any, *, source: str = "screening.yaml") -> RecruitmentConfig:
    where = _Where(source)
    if not isinstance(data, dict):
        raise where.error("", "the file must be a mapping (program, texts, screening, ...)")
    texts = where.mapping(data, "texts")
    missing = [k for k in TEXT_KEYS if not isinstance(texts.get(k), str)]
    if missing:
        raise where.error("texts", f"missing text(s): {', '.join(missing)}")
    for key, text in texts.items():
        try:
            names = {name for _, name, _, _ in Formatter().parse(str(text)) if name is not None}
        except ValueError as exc:
            raise where.error(f"texts.{key}", f"braces do not match ({exc})") from exc
        if unknown := names - PLACEHOLDERS:
            raise where.error(
                f"texts.{key}",
                f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}",
            )
    screening = tuple(
        _question(q, f"screening[{i}]", where)
        for i, q in enumerate(where.sequence(data, "screening"))
    )
    keys = [q.key for q in screening]
    for needed in ("age", "relationship", "region", "send_time"):
        if needed not in keys:
            raise where.error("screening", f"needs a question with key '{needed}'")
    consent_data = where.mapping(data, "consent")
    parts = where.sequence(consent_data, "parts", "consent")
    consent = _yes_no("consent", consent_data, "consent", where)
    partner_data = data.get("partner") or {}
    partner_enabled = bool(partner_data.get("enabled", False))
    partner = _yes_no("partner", partner_data, "partner", where) if partner_enabled else None
    baseline_data = where.mapping(data, "baseline")
    baseline = tuple(
        _question(q, f"baseline.questions[{i}]", where)
        for i, q in enumerate(where.sequence(baseline_data, "questions", "baseline"))
    )
    all_keys = [*keys, "consent", "partner", "partner_name", "partner_phone"]
    all_keys += [q.key for q in baseline]
    dupes = sorted({k for k in all_keys if all_keys.count(k) > 1})
    if dupes:
        raise where.error("", f"question keys must be unique; repeated: {', '.join(dupes)}")
    bands = tuple(int(b) for b in data.get("age_bands") or [18])
    if list(bands) != sorted(bands):
        raise where.error("age_bands", "must be in increasing order, e.g. [18, 30, 45]")
    return RecruitmentConfig(
        program=str(data.get("program", "")),
        locale=str(data.get("locale", "es-PE")),
        country=str(data.get("country", "PE")).upper(),
        age_bands=bands,
        texts={k: str(v).strip() for k, v in texts.items()},
        screening=screening,
        consent_version=str(where.require(consent_data, "version", "consent")),
        consent_parts=tuple(str(p).strip() for p in parts),
        consent=consent,
        partner_enabled=partner_enabled,
        partner_version=str(partner_data.get("version", "")),
        partner=partner,
        partner_name_prompt=str(partner_data.get("name_prompt", "")).strip(),
        partner_phone_prompt=str(partner_data.get("phone_prompt", "")).strip(),
        baseline_instrument=str(baseline_data.get("instrument", "baseline")),
        baseline=baseline,
        allow_return=_flag(data, "allow_return", where),
        source=source,
    )


def _flag(data: dict[str, Any], key: str, where: _Where) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise where.error(key, "write true or false")
    return value


def _question(data: Any, place: str, where: _Where) -> Question:
    if not isinstance(data, dict):
        raise where.error(place, "a question must be a mapping with key, kind and prompt")
    key = str(where.require(data, "key", place))
    kind = str(where.require(data, "kind", place))
    prompt = str(where.require(data, "prompt", place)).strip()
    if kind == "number":
        low, high = int(data.get("min", 0)), int(data.get("max", 120))
        eligible_min = data.get("eligible_min")
        return Question(
            key=key,
            kind=kind,
            prompt=prompt,
            invalid=str(data.get("invalid", "")).strip(),
            min=low,
            max=high,
            eligible_min=int(eligible_min) if eligible_min is not None else None,
        )
    if kind != "choice":
        raise where.error(place, f"kind '{kind}' is not known (number, choice)")
    options = tuple(
        _option(o, f"{place}.options[{i}]", where, buttons=True)
        for i, o in enumerate(where.sequence(data, "options", place))
    )
    if len(options) < 2:
        raise where.error(place, "a choice needs at least two options")
    return Question(
        key=key,
        kind=kind,
        prompt=prompt,
        invalid=str(data.get("invalid", "")).strip(),
        options=options,
    )


def _yes_no(key: str, data: dict[str, Any], place: str, where: _Where) -> Question:
    accept = _option(where.require(data, "accept", place), f"{place}.accept", where, buttons=True)
    decline = _option(
        where.require(data, "decline", place), f"{place}.decline", where, buttons=True
    )
    return Question(
        key=key,
        kind="choice",
        prompt=str(where.require(data, "question", place)).strip(),
        options=(accept, Option(decline.key, decline.title, decline.aliases, eligible=False)),
    )


def _option(data: Any, place: str, where: _Where, *, buttons: bool) -> Option:
    if not isinstance(data, dict):
        raise where.error(place, "an option must be a mapping with key and title")
    title = str(where.require(data, "title", place))
    if buttons and len(title) > MAX_TITLE:
        raise where.error(
            place, f"title '{title}' has {len(title)} characters; WhatsApp allows {MAX_TITLE}"
        )
    return Option(
        key=str(where.require(data, "key", place)),
        title=title,
        aliases=tuple(str(a) for a in data.get("aliases") or ()),
        eligible=bool(data.get("eligible", True)),
        cohabiting=str(data.get("cohabiting", "")),
        time=_clock_time(data.get("time"), place, where),
    )


def _clock_time(value: Any, place: str, where: _Where) -> str:
    """'19:00' as written; YAML reads an unquoted 19:00 as 1140 (minutes, base 60)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value // 60:02d}:{value % 60:02d}"
    text = str(value).strip()
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise where.error(place, f"time '{value}' must be a clock time such as \"19:00\"")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, place: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {place + ': ' if place else ''}{problem}")

    def require(self, data: dict[str, Any], key: str, place: str = "") -> Any:
        if data.get(key) in (None, ""):
            raise self.error(place, f"missing '{key}'")
        return data[key]

    def mapping(self, data: dict[str, Any], key: str, place: str = "") -> dict[str, Any]:
        value = self.require(data, key, place)
        if not isinstance(value, dict):
            raise self.error(place or key, f"'{key}' must be a mapping")
        return value

    def sequence(self, data: dict[str, Any], key: str, place: str = "") -> list[Any]:
        value = self.require(data, key, place)
        if not isinstance(value, list) or not value:
            raise self.error(place or key, f"'{key}' must be a non-empty list")
        return value
