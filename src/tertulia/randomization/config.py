"""A Trial's randomization config, read from YAML and checked. Pure Python (no Django), so
`tertulia randomization check-config` and the tests can use it without a database.

Example (docs/randomization.md explains each key)::

    trial: hablemos-2026
    title: Hablemos Entre Patas, Peru 2026
    arms:
      - {name: program, ratio: 1}
      - {name: control, ratio: 1, waitlist: true}
    strata:
      age_band: ["18-29", "30-44", "45+"]
      region: [lima, norte, sur, centro, oriente]
    block_sizes: [4, 6, 8]
    cohorts: {capacity: 50, open_after_days: 14, send_time_field: send_time,
              region_field: region}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REQUIRED_ARMS = ("program", "control")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_SEED = 2**63 - 1  # fits a PostgreSQL bigint
# Characters that build the stratum key, so they may not appear in a value.
KEY_SEPARATORS = ("|", "=")


class ConfigError(ValueError):
    """The config file has problems; `problems` lists each one with the key to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class StrataError(ValueError):
    """A participant's strata values are missing or not among those the trial declares."""


@dataclass(frozen=True)
class Arm:
    name: str
    ratio: int = 1
    # Control only: offered the program after the endline survey.
    waitlist: bool = False


@dataclass(frozen=True)
class CohortRules:
    capacity: int = 50
    # A group that has not filled a cohort opens anyway this many days after its first man
    # was assigned, so nobody waits for ever in a small region.
    open_after_days: int = 14
    send_time_field: str = "send_time"
    region_field: str = "region"


@dataclass(frozen=True)
class TrialConfig:
    name: str
    arms: tuple[Arm, ...]
    strata: dict[str, tuple[str, ...]]
    block_sizes: tuple[int, ...]
    title: str = ""
    seed: int | None = None
    cohorts: CohortRules = field(default_factory=CohortRules)

    @property
    def ratio_sum(self) -> int:
        return sum(arm.ratio for arm in self.arms)

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arms)

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def stratum_key(self, inputs: Mapping[str, str]) -> str:
        """The stratum a man with these inputs belongs to, e.g. 'age_band=18-29|region=lima'.
        Keys that are not strata (such as a preferred send time) are ignored."""
        problems = []
        parts = []
        for name, allowed in self.strata.items():
            value = inputs.get(name)
            if value is None or str(value).strip() == "":
                problems.append(f"'{name}' is missing (one of: {', '.join(allowed)})")
                continue
            value = str(value).strip()
            if value not in allowed:
                problems.append(
                    f"'{name}' is '{value}', which the trial does not declare "
                    f"(one of: {', '.join(allowed)})"
                )
                continue
            parts.append(f"{name}={value}")
        if problems:
            raise StrataError(f"trial '{self.name}': " + "; ".join(problems))
        return "|".join(parts) or "all"

    def strata_count(self) -> int:
        count = 1
        for values in self.strata.values():
            count *= len(values)
        return count

    def to_dict(self) -> dict[str, Any]:
        """The config as stored with the Trial (JSON), without the seed, which is concealed."""
        data = asdict(self)
        data.pop("seed")
        data = {"trial": data.pop("name"), **data}
        data["arms"] = [asdict(arm) for arm in self.arms]
        data["strata"] = {k: list(v) for k, v in self.strata.items()}
        data["block_sizes"] = list(self.block_sizes)
        return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _arms(raw: object, problems: list[str]) -> tuple[Arm, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("arms: give a list of arms, e.g. [{name: program}, {name: control}]")
        return ()
    arms = []
    for i, item in enumerate(raw):
        where = f"arms[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: write it as {{name: ..., ratio: ...}}")
            continue
        unknown = set(item) - {"name", "ratio", "waitlist"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)} (use name, ratio, waitlist)")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                f"{where}.name: '{name}' must be lower-case letters, digits, '_' or '-' "
                "(e.g. sms_only)"
            )
            continue
        ratio = item.get("ratio", 1)
        if not _is_int(ratio) or ratio < 1:
            problems.append(f"{where}.ratio: '{ratio}' must be a whole number, 1 or more")
            continue
        waitlist = item.get("waitlist", name == "control")
        if not isinstance(waitlist, bool):
            problems.append(f"{where}.waitlist: write true or false")
            continue
        if waitlist and name != "control":
            problems.append(f"{where}.waitlist: only the control arm can be a waitlist")
            continue
        arms.append(Arm(name=name, ratio=ratio, waitlist=waitlist))
    names = [arm.name for arm in arms]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"arms: '{dup}' appears more than once")
    for required in REQUIRED_ARMS:
        if arms and required not in names:
            problems.append(f"arms: the trial needs an arm named '{required}'")
    return tuple(arms)


def _strata(raw: object, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("strata: map each field to its values, e.g. region: [lima, norte]")
        return {}
    strata: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        where = f"strata.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"{where}: field names are lower-case letters, digits and '_'")
            continue
        if not isinstance(values, list) or not values:
            problems.append(f"{where}: list the values it can take, e.g. [lima, norte]")
            continue
        clean = []
        for value in values:
            if isinstance(value, bool):
                # YAML reads yes/no/true/false unquoted as booleans.
                problems.append(
                    f"{where}: {value!r} is read as a yes/no, not as text; quote it "
                    f'(e.g. "{"yes" if value else "no"}")'
                )
                continue
            if not isinstance(value, str | int) or str(value).strip() == "":
                problems.append(f"{where}: '{value}' is not a value; write text such as lima")
                continue
            text = str(value).strip()
            if any(sep in text for sep in KEY_SEPARATORS):
                problems.append(f"{where}: '{text}' may not contain '|' or '='")
                continue
            clean.append(text)
        for dup in sorted({v for v in clean if clean.count(v) > 1}):
            problems.append(f"{where}: '{dup}' appears more than once")
        strata[name] = tuple(dict.fromkeys(clean))
    return strata


def _block_sizes(raw: object, ratio_sum: int, problems: list[str]) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw or not all(_is_int(v) and v > 0 for v in raw):
        problems.append("block_sizes: give whole numbers, e.g. [4, 6, 8]")
        return ()
    sizes = tuple(sorted(set(raw)))
    if ratio_sum:
        wrong = [s for s in sizes if s % ratio_sum]
        if wrong:
            suggestion = [ratio_sum * k for k in (1, 2, 3)] if ratio_sum > 2 else [4, 6, 8]
            problems.append(
                f"block_sizes: {wrong} are not multiples of {ratio_sum}, the sum of the arms' "
                f"ratios, so a block could not keep the allocation ratio; e.g. {suggestion}"
            )
    return sizes


def _cohorts(raw: object, problems: list[str]) -> CohortRules:
    if raw is None:
        return CohortRules()
    if not isinstance(raw, dict):
        problems.append("cohorts: write it as {capacity: 50, open_after_days: 14}")
        return CohortRules()
    known = {"capacity", "open_after_days", "send_time_field", "region_field"}
    if unknown := set(raw) - known:
        problems.append(f"cohorts: unknown keys {sorted(unknown)} (use {', '.join(sorted(known))})")
    capacity = raw.get("capacity", 50)
    if not _is_int(capacity) or not 2 <= capacity <= 500:
        problems.append(f"cohorts.capacity: '{capacity}' must be a whole number from 2 to 500")
        capacity = 50
    days = raw.get("open_after_days", 14)
    if not _is_int(days) or days < 0:
        problems.append(f"cohorts.open_after_days: '{days}' must be a whole number, 0 or more")
        days = 14
    fields = {}
    for key in ("send_time_field", "region_field"):
        value = raw.get(key, CohortRules.__dataclass_fields__[key].default)
        if not isinstance(value, str) or not NAME.match(value):
            problems.append(f"cohorts.{key}: '{value}' must be an input's name, e.g. region")
            value = CohortRules.__dataclass_fields__[key].default
        fields[key] = value
    return CohortRules(capacity=capacity, open_after_days=days, **fields)


def config_from_dict(data: object) -> TrialConfig:
    """Check a parsed config and return it, or raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(["the file must be a mapping with keys trial, arms, strata, ..."])
    problems: list[str] = []
    known = {"trial", "title", "arms", "strata", "block_sizes", "seed", "cohorts"}
    if unknown := set(data) - known:
        problems.append(f"unknown keys {sorted(unknown)} (use {', '.join(sorted(known))})")
    name = data.get("trial")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"trial: '{name}' must be a short name such as hablemos-2026")
        name = ""
    title = data.get("title", "")
    if not isinstance(title, str):
        problems.append("title: write it as text")
        title = ""
    arms = _arms(data.get("arms"), problems)
    strata = _strata(data.get("strata"), problems)
    block_sizes = _block_sizes(data.get("block_sizes"), sum(a.ratio for a in arms), problems)
    seed = data.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        problems.append(f"seed: '{seed}' must be a whole number from 0 to {MAX_SEED}")
        seed = None
    cohorts = _cohorts(data.get("cohorts"), problems)
    if problems:
        raise ConfigError(problems)
    return TrialConfig(
        name=name,
        title=title,
        arms=arms,
        strata=strata,
        block_sizes=block_sizes,
        seed=seed,
        cohorts=cohorts,
    )


def config_load(path: Path) -> TrialConfig:
    """Read and check a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    return config_from_dict(data)
