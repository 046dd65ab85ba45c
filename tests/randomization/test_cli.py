"""`tertulia randomization` as a new user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tertulia.cli import main
from tertulia.randomization.services import assignment_make

from .conftest import CONFIG

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "trial.yaml"
LIMA = {"region": "lima", "cohabiting": "yes", "send_time": "19:00"}


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["randomization", *args])


def test_check_config_says_what_the_example_will_do() -> None:
    result = run("check-config", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "arm control: ratio 1 — waitlist: offered the program after the endline" in result.output
    assert "age_band (3), region (5), cohabiting (2) = 30 strata" in result.output
    assert "seed: drawn when the trial is recorded, then kept concealed" in result.output


def test_check_config_lists_every_problem_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "trial.yaml"
    path.write_text("trial: t\narms: [{name: program}]\nstrata: {cohabiting: [yes, no]}\n")
    result = run("check-config", str(path))
    assert result.exit_code == 1
    assert "4 problem(s) to fix" in result.output  # yes and no are each a problem
    assert "arms: the trial needs an arm named 'control'" in result.output
    assert "block_sizes: give whole numbers, e.g. [4, 6, 8]" in result.output


def test_check_config_warns_when_the_file_holds_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    result = run("check-config", str(path))
    assert result.exit_code == 0
    assert "whoever reads it can compute every allocation" in result.output


@pytest.mark.django_db(transaction=True)
def test_load_records_the_trial_once_without_printing_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    first = run("load", str(path))
    assert first.exit_code == 0, first.output
    assert "Trial 'hablemos-test' recorded" in first.output
    assert str(CONFIG["seed"]) not in first.output
    assert run("load", str(path)).output == first.output


@pytest.mark.django_db(transaction=True)
def test_log_prints_arms_only_of_final_assignments(trial, men) -> None:  # type: ignore[no-untyped-def]
    a, b = men(2)
    final = assignment_make(trial=trial, participant=a, strata=LIMA)
    pending = assignment_make(trial=trial, participant=b, strata=LIMA, final=False)
    result = run("log", "--trial", "hablemos-test")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert final.arm in lines[str(final.pk)].split()
    assert "(concealed)" in lines[str(pending.pk)] and "not final" in lines[str(pending.pk)]
    assert not {"program", "control"} & set(lines[str(pending.pk)].split())


@pytest.mark.django_db(transaction=True)
def test_verify_and_waitlist_report_on_a_trial(trial, men) -> None:  # type: ignore[no-untyped-def]
    for m in men(5):
        assignment_make(trial=trial, participant=m, strata=LIMA)
    verified = run("verify", "hablemos-test")
    assert verified.exit_code == 0
    assert "All 5 assignments of 'hablemos-test' match the sequence of its seed." in verified.output
    waiting = run("waitlist", "hablemos-test")
    assert waiting.exit_code == 0
    assert "not final yet: 0" in waiting.output
    assert "after the endline" in waiting.output  # control men wait for the endline


@pytest.mark.django_db(transaction=True)
def test_an_unknown_trial_is_named_with_the_known_ones(trial) -> None:  # type: ignore[no-untyped-def]
    result = run("log", "--trial", "nope")
    assert result.exit_code == 1
    assert "no trial named 'nope' (recorded trials: hablemos-test)" in result.output
