"""The `tertulia` command as a new user meets it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tertulia.cli import main


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("content", "demo", "serve", "worker", "enroll"):
        assert command in result.output


@pytest.mark.django_db(transaction=True)
def test_enroll_refuses_an_invalid_number_naming_it(make_cohort) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort()
    result = CliRunner().invoke(main, ["enroll", "12345", "--cohort", str(cohort.pk)])
    assert result.exit_code == 1
    assert "'12345' is not a valid phone number" in result.output


@pytest.mark.django_db(transaction=True)
def test_enroll_refuses_a_second_enrolment_clearly(make_cohort) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort()
    first = CliRunner().invoke(main, ["enroll", "+51987000001", "--cohort", str(cohort.pk)])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, ["enroll", "987000001", "--cohort", str(cohort.pk)])
    assert second.exit_code == 1
    assert "already enrolled in the running cohort" in second.output
