"""Importing is idempotent and versioned; a malformed curriculum imports nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tertulia.programs.models import Curriculum, Step
from tertulia.programs.services import CurriculumInvalid, curriculum_import


@pytest.fixture
def copy(tmp_path: Path, mini_path: Path) -> Path:
    target = tmp_path / "mini" / "es-PE"
    shutil.copytree(mini_path, target)
    return target


@pytest.mark.django_db
def test_the_same_files_give_the_same_version(copy: Path) -> None:
    first = curriculum_import(path=copy)
    second = curriculum_import(path=copy)
    assert first.created and not second.created
    assert first.curriculum.pk == second.curriculum.pk
    assert Curriculum.objects.count() == 1
    assert Step.objects.count() == 18


@pytest.mark.django_db
def test_changed_files_give_a_new_version_and_a_cohort_keeps_its_own(
    copy: Path, make_cohort, curriculum
) -> None:  # type: ignore[no-untyped-def]
    first = curriculum_import(path=copy).curriculum
    cohort = make_cohort()
    path = copy / "day-01.yaml"
    path.write_text(path.read_text().replace("Texto del día 1.", "Texto nuevo del día 1."))
    second = curriculum_import(path=copy).curriculum
    assert second.pk != first.pk and second.version != first.version
    cohort.refresh_from_db()
    assert cohort.curriculum_id == curriculum.pk
    old = Step.objects.get(day__curriculum=first, day__number=1, position=1)
    assert old.text == "Texto del día 1."


@pytest.mark.django_db
def test_a_malformed_curriculum_imports_nothing(copy: Path) -> None:
    (copy / "day-02.yaml").unlink()
    path = copy / "day-03.yaml"
    path.write_text(path.read_text().replace("topic: communication", "topic: nope"))
    with pytest.raises(CurriculumInvalid) as caught:
        curriculum_import(path=copy)
    assert len(caught.value.problems) == 2
    assert Curriculum.objects.count() == 0
    assert Step.objects.count() == 0


@pytest.mark.django_db
def test_media_is_copied_by_content(copy: Path, settings) -> None:  # type: ignore[no-untyped-def]
    curriculum = curriculum_import(path=copy).curriculum
    audio = Step.objects.get(day__curriculum=curriculum, kind="audio")
    stored = Path(settings.MEDIA_ROOT) / "content" / f"{audio.media_sha256}.ogg"
    assert stored.read_bytes() == (copy / "audio" / "hola.ogg").read_bytes()
