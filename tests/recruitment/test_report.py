"""The recruitment funnel report: counts per ad variant from screenings and enrollments, their
Wilson intervals, and what `tertulia recruit report` prints and plots."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from click.testing import CliRunner

from tertulia.cohorts.models import Cohort, Enrollment, Participant
from tertulia.messaging.models import Message
from tertulia.programs.models import Curriculum
from tertulia.randomization.funnel_stats import rate
from tertulia.recruitment.models import AdVariant, Screening
from tertulia.recruitment.selectors import UNATTRIBUTED, funnel_counts

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
COHORT_START = dt.date(2026, 3, 10)
_numbers = itertools.count(1)
STAGE_FIELDS = ("screened_at", "consented_at", "baseline_completed_at", "randomized_at")


def _man(program, code: str | None, reached: int, cohort=None, *, engaged_day=None, state=None):
    """A screening that reached the first `reached` stamped stages after starting; with a
    cohort, an enrollment that wrote on `engaged_day` and ended in `state`."""
    participant = Participant.objects.create(phone_hash=f"hash-{next(_numbers)}")
    stamps = {name: T0 for name in STAGE_FIELDS[:reached]}
    Screening.objects.create(
        participant=participant,
        program=program,
        variant=AdVariant.objects.get(code=code) if code else None,
        channel="simulated",
        started_at=T0,
        state=Screening.State.RANDOMIZED if reached == 4 else Screening.State.SCREENING,
        arm="program" if reached == 4 else "",
        **stamps,
    )
    if cohort is None:
        return
    enrollment = Enrollment.objects.create(
        participant=participant, cohort=cohort, state=state or Enrollment.State.ACTIVE
    )
    if engaged_day is not None:
        at = dt.datetime.combine(
            COHORT_START + dt.timedelta(days=engaged_day), dt.time(20), tzinfo=dt.UTC
        )
        Message.objects.create(
            direction=Message.Direction.IN,
            participant=participant,
            enrollment=enrollment,
            channel="simulated",
            status="received",
            created_at=at,
        )


@pytest.fixture
def cohort(program):  # type: ignore[no-untyped-def]
    curriculum = Curriculum.objects.create(
        program=program, locale="es-PE", version="v1", content_hash="x"
    )
    return Cohort.objects.create(
        program=program, curriculum=curriculum, name="Marzo", start_date=COHORT_START
    )


@pytest.fixture
def men(campaign, program, cohort):  # type: ignore[no-untyped-def]
    """Variant A: 10 started, 8 eligible, 6 consented, 5 baseline, 4 randomized; of those
    3 wrote in the first week (1 later completed), 1 wrote only on day 12.
    Variant B: 4 started, 2 eligible. One man came without a code."""
    for reached in (0, 0, 1, 1, 2):
        _man(program, "HEP-AAAA", reached)
    _man(program, "HEP-AAAA", 3)
    _man(program, "HEP-AAAA", 4, cohort, engaged_day=2, state=Enrollment.State.COMPLETED)
    _man(program, "HEP-AAAA", 4, cohort, engaged_day=7)
    _man(program, "HEP-AAAA", 4, cohort, engaged_day=1)
    _man(program, "HEP-AAAA", 4, cohort, engaged_day=12)
    for reached in (0, 0, 1, 1):
        _man(program, "HEP-BBBB", reached)
    _man(program, None, 1)


def test_counts_per_variant_form_a_funnel(men, campaign) -> None:  # type: ignore[no-untyped-def]
    counts = funnel_counts(campaign)
    assert counts.by_variant["HEP-AAAA"] == {
        "started": 10,
        "eligible": 8,
        "consented": 6,
        "baseline_done": 5,
        "randomized": 4,
        "active_day7": 3,
        "completed": 1,
    }
    assert counts.by_variant["HEP-BBBB"]["started"] == 4
    assert counts.by_variant["HEP-BBBB"]["eligible"] == 2
    assert counts.by_variant["HEP-BBBB"]["consented"] == 0
    assert counts.costs == {"HEP-AAAA": 300.0, "HEP-BBBB": 450.0}
    assert UNATTRIBUTED not in counts.by_variant  # a campaign's report shows its own men


def test_unattributed_men_appear_without_a_campaign(men) -> None:  # type: ignore[no-untyped-def]
    counts = funnel_counts()
    assert counts.by_variant[UNATTRIBUTED]["started"] == 1
    assert counts.by_variant[UNATTRIBUTED]["eligible"] == 1


def test_opting_out_before_day_7_is_not_active(men, program, cohort) -> None:  # type: ignore[no-untyped-def]
    enrollment = Enrollment.objects.get(messages__created_at__date=COHORT_START + dt.timedelta(7))
    enrollment.state = Enrollment.State.OPTED_OUT
    enrollment.ended_at = dt.datetime.combine(COHORT_START, dt.time(12), tzinfo=dt.UTC)
    enrollment.save()
    assert funnel_counts().by_variant["HEP-AAAA"]["active_day7"] == 2


def test_report_prints_counts_intervals_costs_and_comparison(men, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tertulia.cli import main

    result = CliRunner().invoke(
        main,
        [
            "recruit",
            "report",
            "--campaign",
            "Lanzamiento",
            "--compare",
            "HEP-AAAA",
            "HEP-BBBB",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    wilson = rate(4, 10)
    assert f"{wilson.low:.1%}–{wilson.high:.1%}" == "16.8%–68.7%"
    lines = result.output.splitlines()
    a = lines.index("HEP-AAAA  A humor")
    assert lines[a + 6].split() == ["Randomized", "4", "40%", "16.8%–68.7%"]
    assert "per randomized man 75.00 PEN; per completer 300.00 PEN" in lines[a + 9]
    overall = lines.index("Overall")
    assert lines[overall + 2].split()[:2] == ["Started", "14"]
    assert "per randomized man 187.50 PEN" in result.output  # (300 + 450) / 4
    assert "HEP-AAAA vs HEP-BBBB" in result.output
    assert "Eligible        80% vs 50%" in result.output
    png = tmp_path / "funnel-HEP-AAAA.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "funnel-overall.png").exists()


def test_report_refuses_an_unknown_variant(men) -> None:  # type: ignore[no-untyped-def]
    from tertulia.cli import main

    result = CliRunner().invoke(main, ["recruit", "report", "--compare", "HEP-AAAA", "NOPE"])
    assert result.exit_code != 0
    assert "unknown variant code NOPE" in result.output


def test_a_man_found_ineligible_is_started_but_not_eligible(campaign, program) -> None:  # type: ignore[no-untyped-def]
    """Screening stamps screened_at for both ends of screening; only an eligible end counts."""
    _man(program, "HEP-BBBB", 1)
    Screening.objects.filter(pk=Screening.objects.latest("pk").pk).update(
        state=Screening.State.INELIGIBLE, ineligible_reason="age"
    )
    _man(program, "HEP-BBBB", 1)
    counts = funnel_counts(campaign)
    assert (
        counts.by_variant["HEP-BBBB"]["started"],
        counts.by_variant["HEP-BBBB"]["eligible"],
    ) == (2, 1)
