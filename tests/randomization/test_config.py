from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tertulia.randomization.config import (
    ConfigError,
    StrataError,
    config_from_dict,
    config_load,
)

from .conftest import CONFIG

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "trial.yaml"


def with_changes(**changes: object) -> dict:
    data = copy.deepcopy(CONFIG)
    data.update(changes)
    return data


def problems_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    return caught.value.problems


def test_the_example_file_loads() -> None:
    config = config_load(EXAMPLE)
    assert config.name == "hablemos-2026"
    assert config.arm_names == ("program", "control")
    assert config.arm("control").waitlist is True
    assert config.strata["cohabiting"] == ("yes", "no")
    assert config.block_sizes == (4, 6, 8)
    assert config.seed is None
    assert config.strata_count() == 30


def test_extra_arms_and_ratios_are_read() -> None:
    config = config_from_dict(
        with_changes(
            arms=[{"name": "program", "ratio": 2}, {"name": "control"}, {"name": "sms_only"}],
            block_sizes=[4, 8],
        )
    )
    assert [(a.name, a.ratio) for a in config.arms] == [
        ("program", 2),
        ("control", 1),
        ("sms_only", 1),
    ]
    assert config.ratio_sum == 4


def test_block_sizes_must_keep_the_ratio() -> None:
    problems = problems_of(
        with_changes(arms=[{"name": "program"}, {"name": "control"}, {"name": "sms_only"}])
    )
    assert problems == [
        "block_sizes: [4, 8] are not multiples of 3, the sum of the arms' ratios, so a block "
        "could not keep the allocation ratio; e.g. [3, 6, 9]"
    ]


def test_every_problem_is_listed_with_its_key() -> None:
    problems = problems_of(
        with_changes(
            arms=[{"name": "program", "ratio": 0}, {"name": "Sms Only"}],
            strata={"cohabiting": [True, False], "region": []},
            seed=-1,
            colour="red",
        )
    )
    assert (
        "unknown keys ['colour'] (use arms, block_sizes, cohorts, seed, strata, title, trial)"
        in problems
    )
    assert "arms[0].ratio: '0' must be a whole number, 1 or more" in problems
    assert any(p.startswith("arms[1].name: 'Sms Only' must be lower-case") for p in problems)
    assert (
        'strata.cohabiting: True is read as a yes/no, not as text; quote it (e.g. "yes")'
        in problems
    )
    assert "strata.region: list the values it can take, e.g. [lima, norte]" in problems
    assert any(p.startswith("seed: '-1' must be a whole number") for p in problems)


def test_program_and_control_arms_are_required() -> None:
    problems = problems_of(with_changes(arms=[{"name": "program"}, {"name": "sms_only"}]))
    assert problems == ["arms: the trial needs an arm named 'control'"]


def test_only_control_can_be_a_waitlist() -> None:
    problems = problems_of(
        with_changes(arms=[{"name": "program", "waitlist": True}, {"name": "control"}])
    )
    assert "arms[0].waitlist: only the control arm can be a waitlist" in problems


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("trial: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        config_load(path)
    with pytest.raises(ConfigError, match="cannot read it"):
        config_load(tmp_path / "missing.yaml")


def test_stratum_key_names_the_values_in_declared_order(design) -> None:  # type: ignore[no-untyped-def]
    key = design.stratum_key({"cohabiting": "no", "region": " lima ", "send_time": "19:00"})
    assert key == "region=lima|cohabiting=no"


def test_missing_and_unknown_strata_values_are_refused_clearly(design) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StrataError) as caught:
        design.stratum_key({"region": "cusco"})
    assert str(caught.value) == (
        "trial 'hablemos-test': 'region' is 'cusco', which the trial does not declare "
        "(one of: lima, norte); 'cohabiting' is missing (one of: yes, no)"
    )


def test_config_round_trips_without_its_seed(design) -> None:  # type: ignore[no-untyped-def]
    stored = design.to_dict()
    assert "seed" not in stored
    again = config_from_dict(stored)
    assert again == design.__class__(**{**design.__dict__, "seed": None})
