"""Checks a curriculum folder against docs/curriculum-format.md and WhatsApp's limits, and
reports every problem at once (a writer fixes them in one pass, not one per run)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tertulia.programs.content import yamlfile
from tertulia.programs.content.media import RULES, sniff_problem
from tertulia.programs.content.spec import CurriculumSpec, DaySpec, Problem, StepSpec

TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
BUTTON_TITLE_MAX = 20
BUTTONS_MAX = 3

DAY_FILE = re.compile(r"^day-(\d+)\.ya?ml$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
STEP_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required, optional)
    "text": ({"text"}, {"expert"}),
    "audio": ({"file"}, {"script", "caption", "expert"}),
    "video": ({"file"}, {"caption", "expert"}),
    "image": ({"file", "caption"}, {"expert"}),
    "challenge": ({"text"}, {"expert"}),
    "checkin": ({"key", "text", "buttons"}, {"expert"}),
    "discussion": ({"text"}, {"expert"}),
}
ONCE_PER_DAY = {"checkin", "discussion"}


@dataclass
class LintResult:
    spec: CurriculumSpec | None
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


class _Linter:
    def __init__(self, root: Path) -> None:
        self.given = root  # problems name files as the writer typed the folder
        self.root = root.resolve()
        self.problems: list[Problem] = []
        self.hasher = hashlib.sha256()

    def report(self, path: Path | str, line: int, message: str) -> None:
        if isinstance(path, Path):
            path = path.resolve() if path.exists() else path
            try:
                rel = str(self.given / path.relative_to(self.root))
            except ValueError:
                rel = str(path)
        else:
            rel = path
        self.problems.append(Problem(rel, line, message))

    def _hash_file(self, path: Path) -> str:
        data = path.read_bytes()
        self.hasher.update(str(path.relative_to(self.root)).encode() + b"\0")
        self.hasher.update(hashlib.sha256(data).digest())
        return hashlib.sha256(data).hexdigest()

    # -- program.yaml ------------------------------------------------------------------------

    def program(self) -> dict[str, Any] | None:
        path = self.root / "program.yaml"
        if not path.exists():
            self.report(path, 1, "missing program.yaml (program, name, locale, topics)")
            return None
        data = self._load(path)
        if data is None:
            return None
        self._hash_file(path)
        if not isinstance(data, dict):
            self.report(path, 1, "program.yaml must be a mapping")
            return None
        for key in ("program", "name", "locale", "topics"):
            if key not in data:
                self.report(path, yamlfile.line_of(data), f"missing '{key}'")
        slug = data.get("program")
        if slug is not None and not (isinstance(slug, str) and SLUG.match(slug)):
            self.report(path, yamlfile.line_of(data, "program"), "'program' must be a slug")
        locale = data.get("locale")
        if isinstance(locale, str) and locale != self.root.name:
            self.report(
                path,
                yamlfile.line_of(data, "locale"),
                f"locale '{locale}' does not match its folder '{self.root.name}'",
            )
        topics = data.get("topics")
        if "topics" in data and not (isinstance(topics, dict) and topics):
            self.report(path, yamlfile.line_of(data, "topics"), "'topics' must map slug: label")
        for key in ("first_day", "last_day"):
            if key in data and not isinstance(data[key], int):
                self.report(path, yamlfile.line_of(data, key), f"'{key}' must be a whole number")
        return data

    def _load(self, path: Path) -> Any:
        try:
            return yamlfile.load(path)
        except yamlfile.YamlError as exc:
            self.report(path, exc.line, str(exc))
            return None

    # -- days --------------------------------------------------------------------------------

    def days(self, topics: dict[str, str], first: int, last: int) -> list[DaySpec]:
        seen: dict[int, Path] = {}
        days: list[DaySpec] = []
        for path in sorted(self.root.glob("*.y*ml")):
            if path.name == "program.yaml":
                continue
            match = DAY_FILE.match(path.name)
            if not match:
                self.report(path, 1, "unexpected file; day files are named day-NN.yaml")
                continue
            day = self.day(path, int(match.group(1)), topics)
            if day is None:
                continue
            if day.number in seen:
                self.report(
                    path, 1, f"duplicate day {day.number}: also in {seen[day.number].name}"
                )
                continue
            seen[day.number] = path
            days.append(day)
        for number in range(first, last + 1):
            if number not in seen:
                self.report(
                    self.root / f"day-{number:02d}.yaml", 1, f"missing day {number}"
                )
        for number, path in seen.items():
            if not first <= number <= last:
                self.report(path, 1, f"day {number} is outside days {first}-{last}")
        return sorted(days, key=lambda d: d.number)

    def day(self, path: Path, file_number: int, topics: dict[str, str]) -> DaySpec | None:
        data = self._load(path)
        if data is None:
            return None
        self._hash_file(path)
        if not isinstance(data, dict):
            self.report(path, 1, "a day file must be a mapping with day, topic, title, steps")
            return None
        number = data.get("day")
        if not isinstance(number, int):
            self.report(path, yamlfile.line_of(data, "day"), "'day' must be a whole number")
            number = file_number
        elif number != file_number:
            self.report(
                path,
                yamlfile.line_of(data, "day"),
                f"day {number} does not match its file name ({path.name})",
            )
        topic = data.get("topic")
        if topic is None:
            self.report(path, yamlfile.line_of(data), "missing 'topic'")
        elif topic not in topics:
            known = ", ".join(sorted(topics))
            self.report(
                path, yamlfile.line_of(data, "topic"), f"unknown topic '{topic}' (known: {known})"
            )
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            self.report(path, yamlfile.line_of(data, "title"), "missing 'title'")
        for key in data:
            if key not in {"day", "topic", "title", "steps"}:
                self.report(path, yamlfile.line_of(data, key), f"unknown field '{key}'")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            self.report(path, yamlfile.line_of(data, "steps"), "'steps' must be a non-empty list")
            raw_steps = []
        steps = []
        kinds_seen: dict[str, int] = {}
        for index, raw in enumerate(raw_steps):
            line = raw_steps.item_lines[index] if isinstance(raw_steps, yamlfile.Seq) else 1
            step = self.step(path, line, raw)
            if step is None:
                continue
            if step.kind in ONCE_PER_DAY and step.kind in kinds_seen:
                self.report(path, line, f"a day has at most one {step.kind} step")
            kinds_seen[step.kind] = line
            steps.append(step)
        return DaySpec(number=number, topic=str(topic), title=str(title or ""), steps=steps)

    # -- steps -------------------------------------------------------------------------------

    def step(self, path: Path, line: int, raw: Any) -> StepSpec | None:
        if not isinstance(raw, dict):
            self.report(path, line, "a step must be a mapping with a 'type'")
            return None
        kind = raw.get("type")
        if kind not in STEP_FIELDS:
            known = ", ".join(STEP_FIELDS)
            self.report(path, line, f"unknown step type '{kind}' (known: {known})")
            return None
        required, optional = STEP_FIELDS[kind]

        def at(key: str) -> int:
            return yamlfile.line_of(raw, key, line)

        for key in sorted(required - raw.keys()):
            self.report(path, line, f"{kind} step is missing '{key}'")
        for key in raw:
            if key != "type" and key not in required | optional:
                self.report(path, at(key), f"unknown field '{key}' in a {kind} step")
        step = StepSpec(kind=kind)
        for key in ("text", "caption", "script", "key"):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                self.report(path, at(key), f"'{key}' must be non-empty text")
                continue
            setattr(step, key, value.strip())
        text_limit = INTERACTIVE_BODY_MAX if kind == "checkin" else TEXT_MAX
        what = "interactive body" if kind == "checkin" else "text"
        if len(step.text) > text_limit:
            self.report(
                path,
                at("text"),
                f"{what} is {len(step.text)} characters; WhatsApp allows {text_limit:,}",
            )
        if len(step.caption) > CAPTION_MAX:
            self.report(
                path,
                at("caption"),
                f"caption is {len(step.caption)} characters; WhatsApp allows {CAPTION_MAX:,}",
            )
        if kind == "checkin" and "buttons" in raw:
            step.buttons = self.buttons(path, at("buttons"), raw["buttons"])
        if "file" in raw:
            self.media(path, at("file"), kind, raw["file"], step)
        expert = raw.get("expert")
        if expert is not None:
            if isinstance(expert, dict) and isinstance(expert.get("name"), str):
                step.expert_name = expert["name"]
                step.expert_role = str(expert.get("role", ""))
            else:
                self.report(path, at("expert"), "'expert' must be {name: ..., role: ...}")
        return step

    def buttons(self, path: Path, line: int, raw: Any) -> list[dict[str, str]]:
        if not isinstance(raw, list) or not raw:
            self.report(path, line, "'buttons' must be a list of {key, title}")
            return []
        if len(raw) > BUTTONS_MAX:
            self.report(
                path, line, f"{len(raw)} buttons; WhatsApp allows at most {BUTTONS_MAX}"
            )
        buttons: list[dict[str, str]] = []
        keys: set[str] = set()
        for index, button in enumerate(raw):
            bline = raw.item_lines[index] if isinstance(raw, yamlfile.Seq) else line
            if isinstance(button, dict) and isinstance(button.get("key"), bool):
                # YAML reads bare no/yes/si-less words like `no` as booleans.
                self.report(
                    path, bline, 'button key was read as true/false; quote it, e.g. key: "no"'
                )
                continue
            if not isinstance(button, dict) or not button.get("key") or not button.get("title"):
                self.report(path, bline, "a button needs a 'key' and a 'title'")
                continue
            title, key = str(button["title"]), str(button["key"])
            if len(title) > BUTTON_TITLE_MAX:
                self.report(
                    path,
                    bline,
                    f"button title '{title}' is {len(title)} characters; "
                    f"WhatsApp allows {BUTTON_TITLE_MAX}",
                )
            if key in keys:
                self.report(path, bline, f"duplicate button key '{key}'")
            keys.add(key)
            buttons.append({"key": key, "title": title})
        return buttons

    def media(self, path: Path, line: int, kind: str, raw: Any, step: StepSpec) -> None:
        if not isinstance(raw, str) or not raw:
            self.report(path, line, "'file' must be a relative path")
            return
        media_file = (self.root / raw).resolve()
        if self.root not in media_file.parents:
            self.report(path, line, f"media file '{raw}' must be inside the curriculum folder")
            return
        if not media_file.is_file():
            self.report(path, line, f"missing media file '{raw}'")
            return
        rule = RULES[kind]
        mime = rule.mimes_by_suffix.get(media_file.suffix.lower())
        if mime is None:
            allowed = ", ".join(sorted(rule.mimes_by_suffix))
            self.report(
                path, line, f"WhatsApp does not accept {kind} as '{media_file.suffix}' ({allowed})"
            )
            return
        size = media_file.stat().st_size
        if size > rule.max_bytes:
            self.report(
                path,
                line,
                f"'{raw}' is {size / 1024 / 1024:.1f} MB; WhatsApp accepts {kind} up to "
                f"{rule.max_bytes // 1024 // 1024} MB",
            )
        if size == 0:
            self.report(path, line, f"'{raw}' is empty")
            return
        wrong = sniff_problem(media_file, mime)
        if wrong:
            self.report(path, line, f"'{raw}' {wrong}")
        step.media_path = raw
        step.media_file = media_file
        step.media_mime = mime
        step.media_size = size
        step.media_sha256 = self._hash_file(media_file)


def lint(root: Path) -> LintResult:
    """Lint the curriculum in `root`; the spec is returned only when there is no problem."""
    root = Path(root)
    linter = _Linter(root)
    if not root.is_dir():
        linter.report(str(root), 1, "not a folder")
        return LintResult(None, linter.problems)
    program = linter.program()
    topics: dict[str, str] = {}
    first, last = 0, 30
    if program:
        raw_topics = program.get("topics")
        if isinstance(raw_topics, dict):
            topics = {str(k): str(v) for k, v in raw_topics.items()}
        first = program.get("first_day", 0) if isinstance(program.get("first_day", 0), int) else 0
        last = program.get("last_day", 30) if isinstance(program.get("last_day", 30), int) else 30
    days = linter.days(topics, first, last)
    if linter.problems or not program:
        return LintResult(None, linter.problems)
    spec = CurriculumSpec(
        root=root,
        program=str(program["program"]),
        name=str(program["name"]),
        locale=str(program["locale"]),
        first_day=first,
        last_day=last,
        topics=topics,
        days=days,
        content_hash=linter.hasher.hexdigest(),
    )
    return LintResult(spec, [])
