"""The Analysis plan: which columns hold the assignment, outcomes, covariates and design.

A plan is read from YAML (format in docs/analysis-plan.md) or built from command-line flags.
It only names columns and choices; checking them against the data is `checks.py`'s job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from tertulia.trials.analysis.errors import TrialInputError

SeType = Literal["auto", "classical", "HC1", "HC2", "cluster"]
SE_TYPES: tuple[str, ...] = ("auto", "classical", "HC1", "HC2", "cluster")
MULTIPLE_TESTING: tuple[str, ...] = ("sharpened", "romano_wolf")
DEFAULT_FAMILY = "primary"


@dataclass(frozen=True)
class Outcome:
    """One endline outcome column, its label, family and (optional) baseline column."""

    name: str
    family: str = DEFAULT_FAMILY
    label: str | None = None
    baseline: str | None = None
    # Which direction is good, so that an index adds components pointing the same way.
    higher_is_better: bool = True

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Family:
    """A group of outcomes tested together (q-values) and optionally summarised by an index."""

    name: str
    label: str | None = None
    index: bool = False

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class AnalysisPlan:
    treatment: str
    outcomes: tuple[Outcome, ...]
    families: tuple[Family, ...] = ()
    trial: str = "trial"
    covariates: tuple[str, ...] = ()
    balance: tuple[str, ...] | None = None
    strata: str | None = None
    cluster: str | None = None
    # Set when whole clusters were randomized, so randomization inference permutes clusters.
    randomized_by: str | None = None
    takeup: str | None = None
    attrition: str | None = None
    se_type: SeType = "auto"
    alpha: float = 0.05
    seed: int = 20220601
    permutations: int = 2000
    multiple_testing: str = "sharpened"
    lee_bootstrap: int = 250

    def family(self, name: str) -> Family:
        for fam in self.families:
            if fam.name == name:
                return fam
        return Family(name=name)

    def family_names(self) -> list[str]:
        names = [f.name for f in self.families]
        for outcome in self.outcomes:
            if outcome.family not in names:
                names.append(outcome.family)
        return names

    def balance_columns(self) -> list[str]:
        if self.balance is not None:
            return list(self.balance)
        columns = list(self.covariates)
        columns += [o.baseline for o in self.outcomes if o.baseline and o.baseline not in columns]
        return columns

    def primary_se_type(self) -> str:
        if self.se_type != "auto":
            return self.se_type
        # HC2 is exact for a difference in means under randomization (Imbens & Kolesar 2016);
        # with a cluster the design-based choice is cluster-robust.
        return "cluster" if self.cluster else "HC2"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        data["families"] = [asdict(f) for f in self.families]
        data["covariates"] = list(self.covariates)
        data["balance"] = list(self.balance) if self.balance is not None else None
        return data


def _as_str_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TrialInputError(f"plan key '{key}' must be a column name or a list of column names")


def _outcome_from(entry: Any, family: str, where: str) -> Outcome:
    if isinstance(entry, str):
        return Outcome(name=entry, family=family)
    if not isinstance(entry, dict) or "name" not in entry:
        raise TrialInputError(f"{where}: each outcome is a column name or a mapping with 'name'")
    unknown = set(entry) - {"name", "label", "baseline", "higher_is_better"}
    if unknown:
        raise TrialInputError(f"{where}: unknown outcome key(s) {sorted(unknown)}")
    return Outcome(
        name=str(entry["name"]),
        family=family,
        label=entry.get("label"),
        baseline=entry.get("baseline"),
        higher_is_better=bool(entry.get("higher_is_better", True)),
    )


PLAN_KEYS = {
    "trial",
    "treatment",
    "strata",
    "cluster",
    "randomized_by",
    "takeup",
    "attrition",
    "covariates",
    "balance",
    "families",
    "outcomes",
    "se_type",
    "alpha",
    "seed",
    "permutations",
    "multiple_testing",
    "lee_bootstrap",
}


def plan_from_dict(raw: dict[str, Any], *, source: str = "plan") -> AnalysisPlan:
    """Build a plan from its YAML mapping, with messages that name the offending key."""
    if not isinstance(raw, dict):
        raise TrialInputError(f"{source}: the plan must be a YAML mapping")
    unknown = set(raw) - PLAN_KEYS
    if unknown:
        raise TrialInputError(
            f"{source}: unknown key(s) {sorted(unknown)}; see docs/analysis-plan.md for the format"
        )
    if not raw.get("treatment"):
        raise TrialInputError(f"{source}: 'treatment' (the 0/1 assignment column) is required")

    outcomes: list[Outcome] = []
    families: list[Family] = []
    for fam_name, fam in (raw.get("families") or {}).items():
        where = f"{source}: family '{fam_name}'"
        if not isinstance(fam, dict) or not fam.get("outcomes"):
            raise TrialInputError(f"{where} needs a list of 'outcomes'")
        families.append(
            Family(name=str(fam_name), label=fam.get("label"), index=bool(fam.get("index", False)))
        )
        outcomes += [_outcome_from(e, str(fam_name), where) for e in fam["outcomes"]]
    outcomes += [_outcome_from(e, DEFAULT_FAMILY, source) for e in raw.get("outcomes") or []]
    if not outcomes:
        raise TrialInputError(
            f"{source}: name at least one outcome (under 'families' or 'outcomes')"
        )
    names = [o.name for o in outcomes]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise TrialInputError(f"{source}: outcome(s) {duplicated} listed more than once")

    se_type = raw.get("se_type", "auto")
    if se_type not in SE_TYPES:
        raise TrialInputError(f"{source}: se_type must be one of {list(SE_TYPES)}, not {se_type!r}")
    multiple = raw.get("multiple_testing", "sharpened")
    if multiple not in MULTIPLE_TESTING:
        raise TrialInputError(
            f"{source}: multiple_testing must be one of {list(MULTIPLE_TESTING)}, not {multiple!r}"
        )
    alpha = float(raw.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise TrialInputError(f"{source}: alpha must be between 0 and 1")
    permutations = int(raw.get("permutations", 2000))
    if permutations < 0:
        raise TrialInputError(f"{source}: permutations must be 0 (off) or a positive number")
    balance = raw.get("balance")
    return AnalysisPlan(
        trial=str(raw.get("trial", "trial")),
        treatment=str(raw["treatment"]),
        outcomes=tuple(outcomes),
        families=tuple(families),
        covariates=_as_str_list(raw.get("covariates"), "covariates"),
        balance=_as_str_list(balance, "balance") if balance is not None else None,
        strata=raw.get("strata"),
        cluster=raw.get("cluster"),
        randomized_by=raw.get("randomized_by"),
        takeup=raw.get("takeup"),
        attrition=raw.get("attrition"),
        se_type=se_type,
        alpha=alpha,
        seed=int(raw.get("seed", 20220601)),
        permutations=permutations,
        multiple_testing=multiple,
        lee_bootstrap=int(raw.get("lee_bootstrap", 250)),
    )


def load_plan(path: str | Path) -> AnalysisPlan:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrialInputError(f"analysis plan {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise TrialInputError(f"analysis plan {path} is not valid YAML: {exc}") from None
    return plan_from_dict(raw, source=str(path))


def plan_from_flags(
    *,
    treatment: str,
    outcomes: list[str],
    covariates: list[str] | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    takeup: str | None = None,
    attrition: str | None = None,
    baselines: dict[str, str] | None = None,
    seed: int | None = None,
    permutations: int | None = None,
    se_type: str = "auto",
) -> AnalysisPlan:
    """The plan for the simple case, where every outcome is one family without an index."""
    baselines = baselines or {}
    unknown = sorted(set(baselines) - set(outcomes))
    if unknown:
        raise TrialInputError(
            f"--baseline names outcome(s) {unknown} that are not given with --outcome"
        )
    raw: dict[str, Any] = {
        "treatment": treatment,
        "outcomes": [{"name": o, "baseline": baselines.get(o)} for o in outcomes],
        "covariates": list(covariates or []),
        "strata": strata,
        "cluster": cluster,
        "takeup": takeup,
        "attrition": attrition,
        "se_type": se_type,
    }
    if seed is not None:
        raw["seed"] = seed
    if permutations is not None:
        raw["permutations"] = permutations
    return plan_from_dict(raw, source="command-line flags")
