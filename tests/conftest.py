"""Shared fixtures: a small imported curriculum, cohorts and enrolled men, and a way to run
queued tasks. Tests that need PostgreSQL or Redis skip on a laptop without them and fail in CI
(CI=true), where the services must be running."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

MINI = Path(__file__).parent / "data" / "curriculum" / "mini" / "es-PE"
LIMA = dt.timezone(dt.timedelta(hours=-5))


def require_service(name: str, available: bool) -> None:
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required in CI but is not reachable")
    pytest.skip(f"{name} is not reachable")


@pytest.fixture(scope="session", autouse=True)
def _redis_queue_ready(django_db_setup: None) -> None:
    """With REDIS_URL set, tasks go through RQ: Redis must answer, and start empty."""
    from django.conf import settings

    if not getattr(settings, "REDIS_URL", None):
        return
    import django_rq
    import redis

    try:
        django_rq.get_connection("default").ping()
    except redis.exceptions.ConnectionError:
        require_service("Redis", False)
    for name in settings.RQ_QUEUES:
        django_rq.get_queue(name).empty()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TERTULIA_REPORTS_DIR = tmp_path / "reports"


@pytest.fixture
def mini_path() -> Path:
    return MINI


@pytest.fixture
def curriculum(db):  # type: ignore[no-untyped-def]
    from tertulia.programs.services import curriculum_import

    return curriculum_import(path=MINI).curriculum


@pytest.fixture
def make_cohort(curriculum):  # type: ignore[no-untyped-def]
    from tertulia.cohorts.services import cohort_create

    def make(
        name: str = "Cohorte A",
        start: dt.date = dt.date(2026, 3, 2),
        send_time: dt.time = dt.time(19, 0),
        capacity: int = 50,
    ):  # type: ignore[no-untyped-def]
        return cohort_create(
            curriculum=curriculum,
            name=name,
            start_date=start,
            send_time=send_time,
            capacity=capacity,
        )

    return make


@pytest.fixture
def enroll():  # type: ignore[no-untyped-def]
    from tertulia.cohorts.services import enrollment_create, participant_get_or_create

    counter = iter(range(1, 1_000_000))

    def make(cohort, phone: str | None = None, timezone: str = "America/Lima"):  # type: ignore[no-untyped-def]
        phone = phone or f"+51987{next(counter):06d}"
        participant, _ = participant_get_or_create(phone=phone, timezone=timezone)
        return enrollment_create(participant=participant, cohort=cohort)

    return make


def lima(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LIMA)


@pytest.fixture
def run_tasks():  # type: ignore[no-untyped-def]
    from tertulia.messaging.worker import run_until_idle

    return run_until_idle
