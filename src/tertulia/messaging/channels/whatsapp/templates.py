"""The registry of a channel's approved templates: which template opens which program day,
which stands in for a service message, and which program values fill its placeholders.

Templates are edited in the admin or loaded from a YAML file (`tertulia channel templates
load NAME FILE`)::

    templates:
      - name: hep_dia_apertura        # Meta's approved name
        language: es
        category: utility             # marketing | utility | authentication
        role: day_opening             # day_opening | service
        day: null                     # a day number, or null for every other day
        parameters: [day, topic]      # what fills {{1}}, {{2}}
        body: "Hoy es el día {{1}}: {{2}}. ¿Seguimos? Respóndenos y te enviamos la cápsula."

Placeholders are filled only with program values (`TEMPLATE_VALUES`), never with anything
about the man: Meta reads templates, and a notification preview shows them on a lock screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from tertulia.messaging.models import ChannelConfig, MessageTemplate

from .client import template_payload

# The values a placeholder may take, all about the program, none about the man.
TEMPLATE_VALUES: dict[str, str] = {
    "day": "the program day's number",
    "topic": "the day's topic",
    "day_title": "the day's title",
    "program": "the program's name",
    "days_left": "days left in the program",
    # Set by the message that names the template (Outbound.template_values): the digest's
    # invitation back to his community.
    "posts": "new posts waiting for him in his community",
    "group": "his community's name (its cohort's)",
}
# Named here only to explain the refusal: these identify or expose a man.
PERSONAL_VALUES = frozenset(
    {"name", "first_name", "last_name", "pseudonym", "phone", "partner", "email", "address"}
)
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_FIELDS = ("name", "language", "category", "role", "day", "parameters", "body", "active")


def template_problems(template: MessageTemplate) -> dict[str, list[str]]:
    """What is wrong with a template, by field (empty when nothing is)."""
    problems: dict[str, list[str]] = {}
    parameters = template.parameters
    if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
        problems["parameters"] = ['must be a list of value names, e.g. ["day", "topic"]']
        return problems
    for value in parameters:
        if value in PERSONAL_VALUES:
            problems.setdefault("parameters", []).append(
                f"'{value}' is about the man; a template may only carry program values "
                f"({', '.join(TEMPLATE_VALUES)})"
            )
        elif value not in TEMPLATE_VALUES:
            problems.setdefault("parameters", []).append(
                f"unknown value '{value}'; use one of {', '.join(TEMPLATE_VALUES)}"
            )
    if template.body:
        numbers = sorted({int(n) for n in _PLACEHOLDER.findall(template.body)})
        if numbers != list(range(1, len(parameters) + 1)):
            problems.setdefault("body", []).append(
                f"the text has placeholders {numbers or 'none'} but {len(parameters)} "
                "parameter(s); they must be {{1}} to {{n}}, one per parameter"
            )
    if template.role == MessageTemplate.Role.SERVICE and template.day is not None:
        problems.setdefault("day", []).append("only a day-opening template opens a day")
    return problems


# -- finding the template for a message ------------------------------------------------------


def pick_day_template(templates: Iterable[MessageTemplate], day: int) -> MessageTemplate | None:
    """Of a channel's templates, the one that opens `day`: the day's own, else the generic."""
    found = [
        t
        for t in templates
        if t.active
        and t.role == MessageTemplate.Role.DAY_OPENING
        and (t.day is None or t.day == day)
    ]
    found.sort(key=lambda t: (t.day is None, t.name))
    return found[0] if found else None


def template_for_day(channel_id: int, day: int) -> MessageTemplate | None:
    """The template that opens `day` on a channel: the day's own, else the generic one."""
    return pick_day_template(MessageTemplate.objects.filter(channel_id=channel_id), day)


def template_named(channel_id: int, name: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(channel_id=channel_id, name=name, active=True).first()


def template_values(*, day: Any | None, curriculum: Any | None) -> dict[str, str]:
    """The program values a template may show, for a Day of a Curriculum (either may be
    missing, e.g. a service message to a man with no enrollment)."""
    values = {key: "" for key in TEMPLATE_VALUES}
    if curriculum is not None:
        values["program"] = curriculum.program.name
    if day is not None:
        values.update(day=str(day.number), topic=day.topic.label, day_title=day.title)
        if curriculum is not None:
            values["days_left"] = str(max(curriculum.last_day - day.number, 0))
    return values


def template_message(
    template: MessageTemplate, *, to: str, values: Mapping[str, str], reference: str
) -> dict[str, Any]:
    """The Cloud API payload that sends `template` with its parameters filled."""
    # An empty parameter is refused by Meta (132000); a dash keeps the sentence readable.
    params = [values.get(key) or "-" for key in template.parameters]
    return template_payload(to, template.name, template.language, params, reference=reference)


# -- loading a registry from YAML --------------------------------------------------------------


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)


class TemplatesInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _entries(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    from tertulia.programs.content import yamlfile

    try:
        document = yamlfile.load(path)
    except yamlfile.YamlError as exc:
        return [], [f"{path}:{exc.line}: {exc}"]
    items = document.get("templates") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return [], [f"{path}:1: expected a mapping with a 'templates' list"]
    entries, problems = [], []
    for index, item in enumerate(items):
        line = yamlfile.line_of(item, default=yamlfile.line_of(items))
        if not isinstance(item, dict):
            problems.append(f"{path}:{line}: template {index + 1} is not a mapping")
            continue
        unknown = sorted(set(item) - set(_FIELDS))
        if unknown:
            problems.append(
                f"{path}:{line}: unknown field(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}"
            )
            continue
        entries.append((line, item))
    return entries, problems


def templates_load(*, channel: str, path: Path, deactivate_missing: bool = False) -> LoadReport:
    """Create or update the templates in `path` on channel `channel` (its name). All or
    nothing: any problem raises TemplatesInvalid, naming file and line, and nothing changes."""
    from django.core.exceptions import ValidationError

    config = ChannelConfig.objects.filter(name=channel).first()
    if config is None:
        raise TemplatesInvalid([f"no WhatsApp channel named '{channel}' (see: channel list)"])
    entries, problems = _entries(path)
    built: list[tuple[MessageTemplate, bool]] = []
    seen: set[str] = set()
    for line, item in entries:
        name = str(item.get("name") or "")
        if name in seen:
            problems.append(f"{path}:{line}: template '{name}' appears twice")
            continue
        seen.add(name)
        template = MessageTemplate.objects.filter(channel=config, name=name).first()
        created = template is None
        template = template or MessageTemplate(channel=config, name=name)
        for key in _FIELDS[1:]:
            if key in item:
                setattr(template, key, item[key] if item[key] is not None else _default(key))
        try:
            template.full_clean(exclude=["channel"])
        except ValidationError as exc:
            from tertulia.programs.content import yamlfile

            for key, messages in exc.message_dict.items():
                label = "" if key == "__all__" else f"{key}: "
                at = yamlfile.line_of(item, key, default=line)
                problems += [f"{path}:{at}: {name or '?'}: {label}{m}" for m in messages]
            continue
        built.append((template, created))
    if problems:
        raise TemplatesInvalid(problems)
    report = LoadReport()
    with transaction.atomic():
        for template, created in built:
            template.save()
            (report.created if created else report.updated).append(template.name)
        if deactivate_missing:
            missing = MessageTemplate.objects.filter(channel=config, active=True).exclude(
                name__in=seen
            )
            report.deactivated = sorted(missing.values_list("name", flat=True))
            missing.update(active=False)
    return report


def _default(key: str) -> Any:
    return {"day": None, "parameters": [], "body": "", "active": True}.get(key, "")


def templates_describe(templates: Iterable[MessageTemplate]) -> list[str]:
    """One line per template, for the CLI."""
    lines = []
    for t in templates:
        opens = ""
        if t.role == MessageTemplate.Role.DAY_OPENING:
            opens = f"opens day {t.day}" if t.day is not None else "opens every other day"
        params = ", ".join(t.parameters) or "no parameters"
        state = "" if t.active else "  (inactive)"
        lines.append(f"{t.name} [{t.language}, {t.category}] {opens or t.role}: {params}{state}")
    return lines
