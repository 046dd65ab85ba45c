from __future__ import annotations

import itertools
from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied

from tertulia.randomization.blocks import sequence
from tertulia.randomization.config import StrataError, config_from_dict
from tertulia.randomization.models import Assignment, AssignmentRelease, Stratum
from tertulia.randomization.services import (
    TrialLocked,
    assignment_finalize,
    assignment_make,
    assignments_verify,
    trial_create,
)

from .conftest import CONFIG

LIMA_YES = {"region": "lima", "cohabiting": "yes", "send_time": "19:00"}


@pytest.mark.django_db
def test_assignments_follow_the_seeded_sequence_of_the_stratum(trial, men) -> None:  # type: ignore[no-untyped-def]
    made = [assignment_make(trial=trial, participant=m, strata=LIMA_YES) for m in men(30)]
    key = "region=lima|cohabiting=yes"
    expected = list(itertools.islice(sequence(config=trial.design, seed=20260301, stratum=key), 30))
    assert [(a.slot, a.block_index, a.arm) for a in made] == [
        (s.slot, s.block_index, s.arm) for s in expected
    ]
    assert all(a.stratum == key and a.is_final for a in made)
    assert made[0].strata == {"region": "lima", "cohabiting": "yes"}
    assert made[0].details == {"send_time": "19:00"}
    assert assignments_verify(trial=trial) == []


@pytest.mark.django_db
def test_each_stratum_has_its_own_sequence(trial, men) -> None:  # type: ignore[no-untyped-def]
    norte = {"region": "norte", "cohabiting": "no"}
    a = [assignment_make(trial=trial, participant=m, strata=LIMA_YES) for m in men(12)]
    b = [assignment_make(trial=trial, participant=m, strata=norte) for m in men(12)]
    assert [x.slot for x in a] == [x.slot for x in b] == list(range(12))
    assert Stratum.objects.filter(trial=trial).count() == 2


@pytest.mark.django_db
def test_a_man_already_assigned_is_never_re_randomized(trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    first = assignment_make(trial=trial, participant=man, strata=LIMA_YES)
    again = assignment_make(
        trial=trial, participant=man, strata={"region": "norte", "cohabiting": "no"}
    )
    assert again.pk == first.pk and again.arm == first.arm
    assert Assignment.objects.count() == 1
    assert Stratum.objects.get().next_slot == 1


@pytest.mark.django_db
def test_unknown_strata_values_are_refused_and_nothing_is_written(trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    with pytest.raises(StrataError, match="'region' is 'cusco', which the trial does not declare"):
        assignment_make(
            trial=trial, participant=man, strata={"region": "cusco", "cohabiting": "no"}
        )
    with pytest.raises(StrataError, match="'cohabiting' is missing"):
        assignment_make(trial=trial, participant=man, strata={"region": "lima"})
    assert not Assignment.objects.exists() and not Stratum.objects.exists()


@pytest.mark.django_db
def test_the_log_refuses_changes_and_deletions(trial, men) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    assignment = assignment_make(trial=trial, participant=man, strata=LIMA_YES)
    assignment.arm = "control" if assignment.arm == "program" else "program"
    for attempt in (
        assignment.save,
        assignment.delete,
        lambda: Assignment.objects.update(arm="control"),
        lambda: Assignment.objects.all().delete(),
        lambda: AssignmentRelease.objects.all().delete(),
        assignment.release.delete,
    ):
        with pytest.raises(PermissionDenied, match="append-only"):
            attempt()
    assert Assignment.objects.get().arm == Assignment.objects.get(pk=assignment.pk).arm
    assert AssignmentRelease.objects.count() == 1


@pytest.mark.django_db
def test_postgresql_refuses_raw_changes_to_the_log(trial, men) -> None:  # type: ignore[no-untyped-def]
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the database trigger exists on PostgreSQL only")
    (man,) = men(1)
    assignment = assignment_make(trial=trial, participant=man, strata=LIMA_YES)
    for sql in (
        "UPDATE randomization_assignment SET arm = 'x'",
        "DELETE FROM randomization_assignmentrelease",
        "DELETE FROM randomization_assignment",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    assert Assignment.objects.get(pk=assignment.pk).arm in ("program", "control")


@pytest.mark.django_db
def test_a_concealed_assignment_becomes_final_once(trial, men, django_user_model) -> None:  # type: ignore[no-untyped-def]
    (man,) = men(1)
    researcher = django_user_model.objects.create_user("ana")
    drawn = assignment_make(trial=trial, participant=man, strata=LIMA_YES, final=False)
    assert drawn.is_final is False
    final = assignment_finalize(assignment=drawn, by=researcher)
    assert final.is_final and final.release.released_by == researcher
    assert assignment_finalize(assignment=final).release.pk == final.release.pk
    assert AssignmentRelease.objects.count() == 1


@pytest.mark.django_db
def test_loading_the_same_config_again_keeps_the_trial(design, men) -> None:  # type: ignore[no-untyped-def]
    trial = trial_create(config=design)
    assert trial_create(config=design).pk == trial.pk
    unseeded = config_from_dict({k: v for k, v in CONFIG.items() if k != "seed"})
    assert trial_create(config=unseeded).seed == 20260301  # the recorded seed stays


@pytest.mark.django_db
def test_without_a_seed_one_is_drawn_and_recorded(design) -> None:  # type: ignore[no-untyped-def]
    first = trial_create(config=config_from_dict({**CONFIG, "trial": "a", "seed": None}))
    second = trial_create(config=config_from_dict({**CONFIG, "trial": "b", "seed": None}))
    assert first.seed != second.seed and 0 <= first.seed < 2**63


@pytest.mark.django_db
def test_the_design_cannot_change_once_men_are_assigned(trial, men) -> None:  # type: ignore[no-untyped-def]
    changed = config_from_dict({**CONFIG, "block_sizes": [2, 4]})
    assert trial_create(config=changed).design.block_sizes == (2, 4)  # none assigned yet
    assignment_make(trial=trial, participant=men(1)[0], strata=LIMA_YES)
    with pytest.raises(TrialLocked, match="already has 1 assignments"):
        trial_create(config=config_from_dict(CONFIG))


@pytest.mark.django_db
def test_verify_finds_an_arm_that_does_not_match_the_seed(trial, men) -> None:  # type: ignore[no-untyped-def]
    for m in men(6):
        assignment_make(trial=trial, participant=m, strata=LIMA_YES)
    trial.seed += 1  # as if someone claimed another seed had been used
    problems = assignments_verify(trial=trial)
    assert problems and all("does not match the sequence" in p for p in problems)


@pytest.mark.django_db
def test_many_men_balance_per_stratum(trial, men) -> None:  # type: ignore[no-untyped-def]
    strata = [{"region": r, "cohabiting": c} for r in ("lima", "norte") for c in ("yes", "no")]
    for i, m in enumerate(men(120)):
        assignment_make(trial=trial, participant=m, strata=strata[i % 4])
    for key in Assignment.objects.values_list("stratum", flat=True).distinct():
        arms = Counter(Assignment.objects.filter(stratum=key).values_list("arm", flat=True))
        assert abs(arms["program"] - arms["control"]) <= 4  # at most half the largest block


@pytest.mark.django_db
def test_a_trial_without_strata_has_one_sequence_and_extra_arms(men) -> None:  # type: ignore[no-untyped-def]
    config = config_from_dict(
        {
            "trial": "sms-test",
            "arms": [{"name": "program", "ratio": 2}, {"name": "control"}, {"name": "sms_only"}],
            "block_sizes": [4, 8],
            "seed": 5,
        }
    )
    trial = trial_create(config=config)
    made = [assignment_make(trial=trial, participant=m, strata={}) for m in men(40)]
    assert {a.stratum for a in made} == {"all"}
    counts = Counter(a.arm for a in made)
    assert set(counts) == {"program", "control", "sms_only"}
    assert abs(counts["program"] - 20) <= 4 and abs(counts["sms_only"] - 10) <= 2
