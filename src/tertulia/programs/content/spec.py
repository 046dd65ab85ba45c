"""The curriculum as read from its files, before it becomes rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class StepSpec:
    kind: str
    key: str = ""
    text: str = ""
    caption: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)
    media_path: str = ""
    media_file: Path | None = None
    media_mime: str = ""
    media_size: int | None = None
    media_sha256: str = ""
    script: str = ""
    expert_name: str = ""
    expert_role: str = ""


@dataclass
class DaySpec:
    number: int
    topic: str
    title: str
    steps: list[StepSpec]


@dataclass
class CurriculumSpec:
    root: Path
    program: str
    name: str
    locale: str
    first_day: int
    last_day: int
    topics: dict[str, str]
    days: list[DaySpec]
    content_hash: str

    @property
    def version(self) -> str:
        return self.content_hash[:12]
