from __future__ import annotations

import datetime as dt

import pytest

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.randomization.formation import Candidate, cohorts_plan, send_time_parse
from tertulia.randomization.models import Assignment
from tertulia.randomization.selectors import assignment_counts, program_candidates, waitlist
from tertulia.randomization.services import assignment_make, cohorts_form

DAY = dt.date(2026, 3, 2)
SEVEN, EIGHT = dt.time(19), dt.time(20)


def men_at(send_time: dt.time, region: str, ids: range, day: dt.date = DAY) -> list[Candidate]:
    return [Candidate(i, send_time, region, day + dt.timedelta(days=i % 3)) for i in ids]


def test_full_groups_open_and_the_rest_wait_for_their_date() -> None:
    candidates = men_at(SEVEN, "lima", range(1, 6)) + men_at(EIGHT, "lima", range(10, 12))
    plan = cohorts_plan(candidates, capacity=4, open_after_days=7, today=DAY)
    assert [(g.send_time, g.region, g.participant_ids, g.reason) for g in plan.to_open] == [
        (SEVEN, "lima", (3, 1, 4, 2), "full")  # in the order they were assigned
    ]
    assert [(g.send_time, g.participant_ids, g.opens_on) for g in plan.waiting] == [
        (SEVEN, (5,), DAY + dt.timedelta(days=9)),  # man 5 was assigned on DAY + 2
        (EIGHT, (10, 11), DAY + dt.timedelta(days=8)),
    ]


def test_a_group_that_did_not_fill_opens_on_its_date() -> None:
    candidates = men_at(EIGHT, "norte", range(10, 12))
    later = cohorts_plan(candidates, capacity=50, open_after_days=7, today=DAY + dt.timedelta(8))
    assert [(g.participant_ids, g.reason) for g in later.to_open] == [((10, 11), "date")]
    assert later.waiting == []
    given = cohorts_plan(candidates, capacity=50, open_after_days=7, today=DAY, open_on=DAY)
    assert [g.reason for g in given.to_open] == ["date"]


def test_regions_and_send_times_never_mix() -> None:
    candidates = men_at(SEVEN, "lima", range(0, 3)) + men_at(SEVEN, "sur", range(3, 6))
    plan = cohorts_plan(candidates, capacity=3, open_after_days=7, today=DAY)
    assert sorted(g.participant_ids for g in plan.to_open) == [(0, 1, 2), (3, 4, 5)]


@pytest.mark.parametrize(
    ("text", "expected"), [("19:00", dt.time(19)), ("7:30", dt.time(7, 30)), ("20h", dt.time(20))]
)
def test_send_times_are_read(text: str, expected: dt.time) -> None:
    assert send_time_parse(text) == expected


@pytest.mark.parametrize("text", ["noche", "25:00", "19:75", ""])
def test_unreadable_send_times_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="write it as HH:MM, e.g. 19:00"):
        send_time_parse(text)


def assign(trial, men, n: int, send_time: str = "19:00", region: str = "lima", final=True):  # type: ignore[no-untyped-def]
    strata = {"region": region, "cohabiting": "yes", "send_time": send_time}
    return [assignment_make(trial=trial, participant=m, strata=strata, final=final) for m in men(n)]


@pytest.mark.django_db
def test_cohorts_form_enrols_program_men_by_time_and_region(trial, men, curriculum, at_day) -> None:  # type: ignore[no-untyped-def]
    made = assign(trial, men, 12) + assign(trial, men, 8, send_time="20:00")
    program = [a for a in made if a.arm == "program"]
    result = cohorts_form(trial=trial, curriculum=curriculum, today=DAY)
    # capacity 4 (the test config): each full group of 4 at a send time opens a cohort
    at_seven = sum(1 for a in program if a.details["send_time"] == "19:00")
    expected = [f"hablemos-test · lima · 19:00 · {i + 1}" for i in range(at_seven // 4)]
    expected += [
        f"hablemos-test · lima · 20:00 · {i + 1}" for i in range((len(program) - at_seven) // 4)
    ]
    assert result.created and [c.name for c in result.created] == expected
    assert [c.send_time for c in result.created] == [SEVEN] * (at_seven // 4) + [EIGHT] * (
        (len(program) - at_seven) // 4
    )
    enrolled = set(Enrollment.objects.values_list("participant_id", flat=True))
    assert enrolled <= {a.participant_id for a in program}  # never a control man
    for cohort in result.created:
        assert cohort.enrollments.count() == 4
        assert cohort.start_date == DAY + dt.timedelta(days=1)
        assert cohort.capacity == 4
    waiting = sum(g.size for g in result.waiting)
    assert len(enrolled) + waiting == len(program)
    # Formed again the same day: nobody is enrolled twice, no cohort is added.
    again = cohorts_form(trial=trial, curriculum=curriculum, today=DAY)
    assert again.created == [] and Cohort.objects.count() == len(result.created)


@pytest.mark.django_db
def test_the_waiting_open_on_their_date(trial, men, curriculum, at_day) -> None:  # type: ignore[no-untyped-def]
    made = assign(trial, men, 4, region="norte")
    program = {a.participant_id for a in made if a.arm == "program"}
    assert 0 < len(program) < 4  # the first block of 4 or more holds both arms
    first = cohorts_form(trial=trial, curriculum=curriculum, today=DAY)
    assert first.created == []
    later = cohorts_form(trial=trial, curriculum=curriculum, today=DAY + dt.timedelta(days=30))
    (cohort,) = later.created
    assert set(cohort.enrollments.values_list("participant_id", flat=True)) == program


@pytest.mark.django_db
def test_concealed_assignments_are_not_formed_into_cohorts(trial, men, curriculum, at_day) -> None:  # type: ignore[no-untyped-def]
    assign(trial, men, 10, final=False)
    assert program_candidates(trial=trial) == ([], [])
    assert (
        cohorts_form(trial=trial, curriculum=curriculum, today=DAY + dt.timedelta(99)).created == []
    )
    counts = assignment_counts(trial=trial)
    assert counts.by_arm == {"program": 0, "control": 0} and counts.concealed == 10


@pytest.mark.django_db
def test_an_unreadable_send_time_is_reported_not_guessed(trial, men) -> None:  # type: ignore[no-untyped-def]
    made = assign(trial, men, 6, send_time="noche")
    candidates, problems = program_candidates(trial=trial)
    assert candidates == []
    program = [a for a in made if a.arm == "program"]
    assert problems[0] == (
        f"participant {program[0].participant_id}: send_time: 'noche' is not a time of day; "
        "write it as HH:MM, e.g. 19:00"
    )


@pytest.mark.django_db
def test_the_waitlist_shows_who_waits_for_which_group(trial, men, at_day) -> None:  # type: ignore[no-untyped-def]
    made = assign(trial, men, 6) + assign(trial, men, 2, region="norte", send_time="20:00")
    rows = waitlist(trial=trial, today=DAY)
    by_arm: dict[str, int] = {}
    for row in rows:
        by_arm[row.arm] = by_arm.get(row.arm, 0) + row.count
    arms = [a.arm for a in made]
    assert by_arm.get("control", 0) == arms.count("control")
    # program men in groups not yet full (capacity 4) wait; the control men wait for the endline
    assert all(row.opens_on is None for row in rows if row.arm == "control")
    assert all(row.opens_on is not None for row in rows if row.arm == "program")
    regions = {(row.arm, row.region, row.send_time) for row in rows}
    assert ("control", "norte", EIGHT) in regions or "control" not in arms[6:]
    assert Assignment.objects.count() == 8
