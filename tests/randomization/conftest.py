"""A two-arm trial stratified on region and cohabiting, and men to assign."""

from __future__ import annotations

from typing import Any

import pytest

from tertulia.randomization.config import config_from_dict

CONFIG: dict[str, Any] = {
    "trial": "hablemos-test",
    "arms": [{"name": "program"}, {"name": "control", "waitlist": True}],
    "strata": {"region": ["lima", "norte"], "cohabiting": ["yes", "no"]},
    "block_sizes": [4, 6, 8],
    "seed": 20260301,
    "cohorts": {"capacity": 4, "open_after_days": 7},
}


@pytest.fixture
def design():  # type: ignore[no-untyped-def]
    return config_from_dict(CONFIG)


@pytest.fixture
def trial(db, design):  # type: ignore[no-untyped-def]
    from tertulia.randomization.services import trial_create

    return trial_create(config=design)


@pytest.fixture
def men(db):  # type: ignore[no-untyped-def]
    """make(n) -> n new participants."""
    from tertulia.cohorts.services import participant_get_or_create

    counter = iter(range(1, 1_000_000))

    def make(n: int) -> list[Any]:
        return [participant_get_or_create(phone=f"+51987{next(counter):06d}")[0] for _ in range(n)]

    return make


@pytest.fixture
def at_day():  # type: ignore[no-untyped-def]
    """Run on a simulated clock from 10:00 in Lima on 2 March 2026; yields the clock."""
    import datetime as dt

    from tertulia.core import clock

    simulated = clock.SimulatedClock(
        dt.datetime(2026, 3, 2, 10, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    )
    previous = clock.use(simulated)
    yield simulated
    clock.use(previous)
