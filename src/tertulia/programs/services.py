"""Writes for programs: importing a curriculum version."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tertulia.programs.content.lint import lint
from tertulia.programs.content.spec import CurriculumSpec, Problem
from tertulia.programs.models import Curriculum, Day, Program, Step, Topic


class CurriculumInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the curriculum")
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    curriculum: Curriculum
    created: bool


def media_store_path(sha256: str, suffix: str) -> Path:
    """Where an imported media file lives: named by its content, so versions share files and a
    later edit of the source folder never changes what a running cohort receives."""
    return Path(settings.MEDIA_ROOT) / "content" / f"{sha256}{suffix.lower()}"


def curriculum_import(*, path: Path) -> ImportResult:
    """Import the curriculum in `path`. The same files give the same version (nothing is
    written); changed files give a new version; invalid files import nothing."""
    result = lint(Path(path))
    if result.spec is None:
        raise CurriculumInvalid(result.problems)
    spec = result.spec
    with transaction.atomic():
        program, _ = Program.objects.get_or_create(slug=spec.program, defaults={"name": spec.name})
        existing = Curriculum.objects.filter(
            program=program, locale=spec.locale, content_hash=spec.content_hash
        ).first()
        if existing:
            return ImportResult(existing, created=False)
        curriculum = _create_version(program, spec)
    return ImportResult(curriculum, created=True)


def _create_version(program: Program, spec: CurriculumSpec) -> Curriculum:
    curriculum = Curriculum.objects.create(
        program=program,
        locale=spec.locale,
        version=spec.version,
        content_hash=spec.content_hash,
        source_path=str(spec.root),
        first_day=spec.first_day,
        last_day=spec.last_day,
    )
    topics = {
        slug: Topic.objects.create(curriculum=curriculum, slug=slug, label=label)
        for slug, label in spec.topics.items()
    }
    steps: list[Step] = []
    for day_spec in spec.days:
        day = Day.objects.create(
            curriculum=curriculum,
            number=day_spec.number,
            topic=topics[day_spec.topic],
            title=day_spec.title,
        )
        for position, s in enumerate(day_spec.steps, start=1):
            if s.media_file is not None:
                target = media_store_path(s.media_sha256, s.media_file.suffix)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(s.media_file, target)
            steps.append(
                Step(
                    day=day,
                    position=position,
                    kind=s.kind,
                    key=s.key,
                    text=s.text,
                    caption=s.caption,
                    buttons=s.buttons,
                    media_path=s.media_path,
                    media_sha256=s.media_sha256,
                    media_mime=s.media_mime,
                    media_size=s.media_size,
                    script=s.script,
                    expert_name=s.expert_name,
                    expert_role=s.expert_role,
                )
            )
    Step.objects.bulk_create(steps)
    return curriculum
