"""Checks the data against the Analysis plan and prepares the Assignment and design columns.

Every problem found here is reported with the column's name and what to do about it: an error
when the analysis cannot go on, a warning when it can and the message says how it went on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tertulia.trials.analysis.errors import TrialInputError, Warnings
from tertulia.trials.analysis.plan import AnalysisPlan

# Below this many clusters in an arm, cluster-robust standard errors over-reject
# (Cameron & Miller 2015; MacKinnon & Webb 2017).
FEW_CLUSTERS = 20
MISSING_SUFFIX = "__missing"


@dataclass
class Design:
    """The randomized sample with its Assignment, strata, clusters and adjusted covariates."""

    data: pd.DataFrame
    treatment: np.ndarray
    strata: np.ndarray
    strata_labels: list[str]
    cluster: np.ndarray | None
    randomization_unit: np.ndarray | None
    covariates: pd.DataFrame
    takeup: np.ndarray | None
    attrited: np.ndarray | None
    warnings: Warnings = field(default_factory=Warnings)

    @property
    def n(self) -> int:
        return int(self.treatment.size)


def _columns_by_role(plan: AnalysisPlan) -> list[tuple[str, str]]:
    roles = [(plan.treatment, "treatment")]
    roles += [(o.name, "outcome") for o in plan.outcomes]
    roles += [(o.baseline, f"baseline of outcome '{o.name}'") for o in plan.outcomes if o.baseline]
    roles += [(c, "covariate") for c in plan.covariates]
    roles += [(c, "balance variable") for c in plan.balance or ()]
    for attr in ("strata", "cluster", "randomized_by", "takeup", "attrition"):
        value = getattr(plan, attr)
        if value:
            roles.append((value, attr.replace("_", " ")))
    return roles


def require_columns(data: pd.DataFrame, plan: AnalysisPlan) -> None:
    missing = [(col, role) for col, role in _columns_by_role(plan) if col not in data.columns]
    if missing:
        listed = ", ".join(f"'{c}' ({r})" for c, r in missing)
        available = ", ".join(map(str, data.columns[:40]))
        more = " …" if len(data.columns) > 40 else ""
        raise TrialInputError(
            f"column(s) {listed} not in the data. Columns available: {available}{more}. "
            "Fix the name in the plan or flags, or add the column to the data file."
        )


def _numeric(data: pd.DataFrame, column: str, role: str) -> pd.Series:
    series = data[column]
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if not pd.api.types.is_numeric_dtype(series):
        example = series.dropna().astype(str).head(3).tolist()
        raise TrialInputError(
            f"{role} '{column}' is not numeric (values such as {example}). "
            "Recode it as numbers; a categorical covariate goes in as 0/1 dummy columns, "
            "a randomization block as --strata."
        )
    return series.astype(float)


def _binary(data: pd.DataFrame, column: str, role: str, *, what: str) -> np.ndarray:
    values = _numeric(data, column, role)
    n_missing = int(values.isna().sum())
    if n_missing:
        raise TrialInputError(f"{role} column '{column}' has {n_missing} missing value(s); {what}")
    found = sorted(set(np.unique(values.to_numpy())))
    if not set(found) <= {0.0, 1.0}:
        shown = [int(v) if float(v).is_integer() else v for v in found[:8]]
        raise TrialInputError(
            f"{role} column '{column}' must be coded 0/1; found values {shown}. "
            "Recode it: 1 for yes (the program arm, took part, left the survey), 0 for no."
        )
    return values.to_numpy(dtype=float)


def prepare(data: pd.DataFrame, plan: AnalysisPlan) -> Design:
    """Validate the data against the plan and build the design used by every method."""
    require_columns(data, plan)
    warnings = Warnings()
    data = data.reset_index(drop=True)

    treatment = _binary(
        data,
        plan.treatment,
        "treatment",
        what="every randomized unit needs its assignment; drop rows that were never randomized.",
    )
    for arm, label in ((0.0, "control (0)"), (1.0, "treatment (1)")):
        if not (treatment == arm).any():
            raise TrialInputError(
                f"treatment column '{plan.treatment}' has no {label} units; "
                "the analysis compares two arms, so check the file holds the whole trial."
            )

    for outcome in plan.outcomes:
        _numeric(data, outcome.name, "outcome")

    strata, strata_labels = _strata(data, plan, treatment, warnings)
    cluster = _clusters(data, plan, treatment, warnings)
    randomization_unit = None
    if plan.randomized_by:
        randomization_unit = _codes(data[plan.randomized_by], plan.randomized_by, "randomized by")
        _check_constant_within(treatment, randomization_unit, plan.randomized_by, plan.treatment)

    takeup = None
    if plan.takeup:
        takeup = _numeric(data, plan.takeup, "take-up").to_numpy()
        if np.isnan(takeup).any():
            raise TrialInputError(
                f"take-up column '{plan.takeup}' has missing values; code non-participants as 0."
            )
        if takeup.min() < 0 or takeup.max() > 1:
            raise TrialInputError(
                f"take-up column '{plan.takeup}' must lie between 0 and 1 (share of the program "
                "received, or 0/1 for took part)."
            )
    attrited = None
    if plan.attrition:
        attrited = _binary(
            data,
            plan.attrition,
            "attrition",
            what="code 1 for units not surveyed at endline and 0 for those surveyed.",
        )

    covariate_columns = list(dict.fromkeys(list(plan.covariates) + plan.balance_columns()))
    covariate_columns += [o.baseline for o in plan.outcomes if o.baseline]
    covariates = _impute(data, list(dict.fromkeys(covariate_columns)), warnings)
    return Design(
        data=data,
        treatment=treatment,
        strata=strata,
        strata_labels=strata_labels,
        cluster=cluster,
        randomization_unit=randomization_unit,
        covariates=covariates,
        takeup=takeup,
        attrited=attrited,
        warnings=warnings,
    )


def _codes(series: pd.Series, column: str, role: str) -> np.ndarray:
    if series.isna().any():
        raise TrialInputError(
            f"{role} column '{column}' has {int(series.isna().sum())} missing value(s); "
            "every randomized unit belongs to one block."
        )
    codes, _ = pd.factorize(series, sort=True)
    return codes.astype(np.int64)


def _check_constant_within(
    treatment: np.ndarray, unit: np.ndarray, unit_column: str, treatment_column: str
) -> None:
    lo = np.full(unit.max() + 1, np.inf)
    hi = np.full(unit.max() + 1, -np.inf)
    np.minimum.at(lo, unit, treatment)
    np.maximum.at(hi, unit, treatment)
    if (lo != hi).any():
        raise TrialInputError(
            f"'{unit_column}' is the unit of randomization, but '{treatment_column}' varies "
            "within some of its units; fix the assignment or drop randomized_by."
        )


def _strata(
    data: pd.DataFrame, plan: AnalysisPlan, treatment: np.ndarray, warnings: Warnings
) -> tuple[np.ndarray, list[str]]:
    if not plan.strata:
        return np.zeros(len(data), dtype=np.int64), ["all"]
    series = data[plan.strata]
    codes = _codes(series, plan.strata, "strata")
    labels = [str(v) for v in pd.factorize(series, sort=True)[1]]
    treated = np.bincount(codes, weights=treatment, minlength=len(labels))
    sizes = np.bincount(codes, minlength=len(labels))
    one_arm = [labels[i] for i in range(len(labels)) if treated[i] in (0, sizes[i])]
    if len(one_arm) == len(labels):
        raise TrialInputError(
            f"every stratum in '{plan.strata}' holds only one arm, so strata fixed effects absorb "
            "the treatment; check the strata column is the randomization block."
        )
    if one_arm:
        shown = ", ".join(one_arm[:5]) + (" …" if len(one_arm) > 5 else "")
        warnings.add(
            f"strata column '{plan.strata}': {len(one_arm)} stratum/strata hold only one arm "
            f"({shown}); their units do not inform the effect. Merge them with a neighbouring "
            "stratum if that matches how randomization was done."
        )
    return codes, labels


def _clusters(
    data: pd.DataFrame, plan: AnalysisPlan, treatment: np.ndarray, warnings: Warnings
) -> np.ndarray | None:
    if not plan.cluster:
        return None
    series = data[plan.cluster]
    codes, uniques = pd.factorize(series, sort=True)
    codes = codes.astype(np.int64)
    missing = codes < 0
    if missing.any():
        # Individually randomized group-treatment trials: control men belong to no community,
        # so each is his own cluster (Bauer et al. 2008).
        if (missing & (treatment == 1)).any():
            warnings.add(
                f"cluster column '{plan.cluster}' is empty for "
                f"{int((missing & (treatment == 1)).sum())} treated unit(s); each is treated as "
                "a cluster of one. Fill in their community if they had one."
            )
        codes[missing] = len(uniques) + np.arange(int(missing.sum()))
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        raise TrialInputError(
            f"cluster column '{plan.cluster}' holds a single cluster; cluster-robust errors need "
            "many. Remove --cluster or give the right column."
        )
    for arm, name in ((1.0, "treatment"), (0.0, "control")):
        in_arm = codes[treatment == arm]
        sizes = np.bincount(in_arm)
        sizes = sizes[sizes > 0]
        multi = int((sizes > 1).sum())
        if multi and sizes.size < FEW_CLUSTERS:
            warnings.add(
                f"cluster column '{plan.cluster}': only {sizes.size} clusters in the {name} arm; "
                f"cluster-robust standard errors are unreliable below about {FEW_CLUSTERS}. "
                "Read the randomization-inference p-value (ri_p) instead."
            )
    return codes


def _impute(data: pd.DataFrame, columns: list[str], warnings: Warnings) -> pd.DataFrame:
    """Covariates with missing values: fill with the mean and add a missing-value indicator.

    This keeps every randomized unit in the regression, the usual practice in trial analysis
    (J-PAL's guidance; Jones 1996 for why the indicator is harmless under randomization).
    """
    out: dict[str, pd.Series] = {}
    for column in columns:
        values = _numeric(data, column, "covariate")
        n_missing = int(values.isna().sum())
        if n_missing == len(values):
            raise TrialInputError(f"covariate '{column}' is empty; remove it from the plan.")
        if n_missing:
            warnings.add(
                f"covariate '{column}' has {n_missing} missing value(s); filled with its mean and "
                f"an indicator '{column}{MISSING_SUFFIX}' added to the regression."
            )
            out[column + MISSING_SUFFIX] = values.isna().astype(float)
            values = values.fillna(values.mean())
        out[column] = values
    return pd.DataFrame(out, index=data.index)


def covariate_block(design: Design, columns: list[str]) -> list[str]:
    """The prepared columns (value and, if any, missing indicator) for the given covariates."""
    names: list[str] = []
    for column in columns:
        names.append(column)
        if column + MISSING_SUFFIX in design.covariates.columns:
            names.append(column + MISSING_SUFFIX)
    return names
