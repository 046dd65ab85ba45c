"""The whole analysis of a Trial: data frame + Analysis plan -> results (the results.json dict).

The result's layout is documented in docs/trial-results-schema.md; `SCHEMA` names its version.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
from dataclasses import replace
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from tertulia.trials.analysis import ri
from tertulia.trials.analysis.balance import attrition_summary, balance_table, joint_orthogonality
from tertulia.trials.analysis.checks import Design, covariate_block, prepare
from tertulia.trials.analysis.errors import TrialInputError
from tertulia.trials.analysis.estimate import (
    CONST,
    build_regressors,
    extend_basis,
    iv_effect,
    ols_effect,
    report_dropped,
)
from tertulia.trials.analysis.indices import anderson_index
from tertulia.trials.analysis.lee import lee_bounds
from tertulia.trials.analysis.multiple import romano_wolf, sharpened_q_values
from tertulia.trials.analysis.plan import AnalysisPlan, Outcome

SCHEMA = "tertulia.trial-results/1"
INDEX_SUFFIX = "_index"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _add_indices(design: Design, plan: AnalysisPlan) -> tuple[AnalysisPlan, set[str], dict]:
    """Append one Anderson index per family that asks for it, as an extra outcome."""
    index_names: set[str] = set()
    weights: dict[str, Any] = {}
    extra: list[Outcome] = []
    control = design.treatment == 0
    for family in plan.families:
        if not family.index:
            continue
        members = [o for o in plan.outcomes if o.family == family.name]
        if len(members) < 2:
            design.warnings.add(
                f"family '{family.name}' has one outcome; an index of one outcome is that "
                "outcome standardized, so no index was built."
            )
            continue
        direction = {o.name: o.higher_is_better for o in members}
        try:
            endline = anderson_index(design.data[[o.name for o in members]], control, direction)
        except ValueError as exc:
            raise TrialInputError(f"family '{family.name}': {exc}") from None
        name = f"{family.name}{INDEX_SUFFIX}"
        design.data[name] = endline.values
        baseline_name = None
        if all(o.baseline for o in members):
            base_direction = {o.baseline: o.higher_is_better for o in members if o.baseline}
            base_cols = [o.baseline for o in members if o.baseline]
            baseline = anderson_index(design.data[base_cols], control, base_direction)
            baseline_name = f"{name}_bl"
            design.data[baseline_name] = baseline.values
            values = baseline.values
            if values.isna().any():
                design.covariates[baseline_name + "__missing"] = values.isna().astype(float)
                values = values.fillna(values.mean())
            design.covariates[baseline_name] = values
        index_names.add(name)
        weights[family.name] = {"outcome": name, "weights": endline.weights}
        extra.append(
            Outcome(
                name=name,
                family=family.name,
                label=f"Index ({family.name})",
                baseline=baseline_name,
            )
        )
    return replace(plan, outcomes=plan.outcomes + tuple(extra)), index_names, weights


def _skip_reason(y: np.ndarray, treatment: np.ndarray, name: str) -> str | None:
    observed = ~np.isnan(y)
    for arm, label in ((0.0, "control"), (1.0, "treatment")):
        if int((observed & (treatment == arm)).sum()) < 2:
            return (
                f"outcome '{name}' has fewer than two observed values in the {label} arm; "
                "check the column is the endline measure and is filled in."
            )
    if np.nanmax(y) == np.nanmin(y):
        return (
            f"outcome '{name}' is constant ({np.nanmin(y):g}) in the analysed sample, so there "
            "is no effect to estimate; check the column or drop it from the plan."
        )
    return None


def _inference_dict(effect: Any, kind: str) -> dict[str, Any]:
    inf = effect.by_type[kind]
    return {
        "estimate": effect.estimate,
        "se": inf.se,
        "ci_low": inf.ci_low,
        "ci_high": inf.ci_high,
        "p": inf.p,
        "se_type": kind,
        "df": inf.df,
    }


def run_analysis(
    data: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    data_name: str | None = None,
    data_sha256: str | None = None,
) -> dict[str, Any]:
    """Analyse the Trial in `data` as the plan says; returns the results.json document."""
    # The regressions are many small, thin least-squares problems; multi-threaded BLAS spends
    # more on synchronisation than on arithmetic there, up to 20x slower on a busy 2-core box
    # (docs/decisions/0013-single-threaded-blas.md).
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_analysis(data, plan, data_name=data_name, data_sha256=data_sha256)


def _run_analysis(
    data: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    data_name: str | None,
    data_sha256: str | None,
) -> dict[str, Any]:
    design = prepare(data.copy(), plan)
    warnings = design.warnings
    primary = plan.primary_se_type()
    if primary == "cluster" and design.cluster is None:
        raise TrialInputError("se_type 'cluster' needs a cluster column (--cluster or 'cluster:')")

    balance_columns = plan.balance_columns()
    balance = {
        "variables": balance_table(design, balance_columns),
        "joint_test": joint_orthogonality(design, balance_columns),
        "joint_test_respondents": None,
    }
    if design.attrited is not None:
        balance["joint_test_respondents"] = joint_orthogonality(
            design, balance_columns, mask=design.attrited == 0
        )
    attrition = attrition_summary(design, balance_columns, primary=primary, alpha=plan.alpha)

    full_plan, index_names, index_weights = _add_indices(design, plan)
    rows: list[dict[str, Any]] = []
    problems: list[ri.RiProblem] = []
    problem_rows: list[int] = []
    # Outcomes share the constant, strata and plan covariates; only the baseline differs.
    shared = {CONST, *covariate_block(design, list(plan.covariates))}
    bases: dict[tuple[bytes, tuple[str, ...]], np.ndarray] = {}
    for outcome in full_plan.outcomes:
        y_all = design.data[outcome.name].astype(float).to_numpy()
        is_index = outcome.name in index_names
        row: dict[str, Any] = {
            "name": outcome.name,
            "label": outcome.display,
            "family": outcome.family,
            "is_index": is_index,
            "higher_is_better": outcome.higher_is_better,
            "baseline": outcome.baseline,
            "n": int((~np.isnan(y_all)).sum()),
            "skipped": None,
        }
        reason = _skip_reason(y_all, design.treatment, outcome.name)
        if reason:
            warnings.add(reason + " It is listed without estimates.")
            row["skipped"] = reason
            rows.append(row)
            continue
        mask = ~np.isnan(y_all)
        y = y_all[mask]
        treatment = design.treatment[mask]
        cluster = design.cluster[mask] if design.cluster is not None else None
        regressors = build_regressors(
            design,
            mask,
            baseline=[outcome.baseline] if outcome.baseline else [],
            covariates=list(plan.covariates),
        )
        report_dropped(regressors, outcome.name, warnings, treatment_column=plan.treatment)
        controls, control_names = regressors.without_treatment()
        # One basis of the controls serves the ITT, the TOT and randomization inference.
        basis = _controls_basis(controls, control_names, shared, mask, bases)
        effect = ols_effect(
            y, regressors, cluster=cluster, primary=primary, alpha=plan.alpha, basis=basis
        )
        control_values = y[treatment == 0]
        control_mean = float(control_values.mean())
        row.update(
            {
                "n_control": int((treatment == 0).sum()),
                "n_treatment": int((treatment == 1).sum()),
                "control_mean": control_mean,
                "control_sd": float(control_values.std(ddof=1)),
                "itt": _inference_dict(effect, primary),
                "se_alternatives": {kind: inf.se for kind, inf in effect.by_type.items()},
                "pct_of_control_mean": None,
                "q_sharpened": None,
                "p_romano_wolf": None,
                "ri_p": None,
                "tot": None,
                "lee_bounds": None,
            }
        )
        if not is_index and abs(control_mean) > 1e-12:
            row["pct_of_control_mean"] = 100.0 * effect.estimate / control_mean
        if design.takeup is not None:
            row["tot"] = iv_effect(
                y, design.takeup[mask], treatment, basis, cluster=cluster, alpha=plan.alpha
            )
        if design.attrited is not None and not is_index:
            row["lee_bounds"] = lee_bounds(
                y_all, design.treatment, mask, alpha=plan.alpha
            ).to_dict()
        if plan.permutations > 0:
            problems.append(
                ri.make_problem(y, controls, np.flatnonzero(mask), cluster, basis=basis)
            )
            problem_rows.append(len(rows))
        rows.append(row)

    bases.clear()  # the shared bases are no longer needed; free them before RI's buffers
    ri_null = None
    if problems:
        ri_p, ri_observed, ri_null = ri.ri_p_values(
            problems,
            design.treatment,
            design.strata,
            plan.permutations,
            seed=plan.seed,
            unit=design.randomization_unit,
        )
        for k, position in enumerate(problem_rows):
            rows[position]["ri_p"] = float(ri_p[k])
        _romano_wolf(rows, problem_rows, ri_observed, ri_null)

    _sharpened(rows, full_plan, index_names)
    results = {
        "schema": SCHEMA,
        "trial": plan.trial,
        "design": _design_summary(design, plan, primary),
        "outcomes": rows,
        "indices": index_weights,
        "balance": balance,
        "attrition": attrition,
        "multiple_testing": plan.multiple_testing,
        "warnings": warnings.messages,
        "provenance": {
            "tertulia_version": _version("tertulia"),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data_file": data_name,
            "data_sha256": data_sha256,
            "n_rows": int(len(data)),
            "seed": plan.seed,
            "permutations": plan.permutations,
            "plan": plan.to_dict(),
            "python": platform.python_version(),
            "packages": {
                name: _version(name)
                for name in ("numpy", "pandas", "scipy", "statsmodels", "linearmodels")
            },
        },
    }
    return finite(results, warnings=warnings.messages)


def _controls_basis(
    controls: np.ndarray,
    names: list[str],
    shared: set[str],
    mask: np.ndarray,
    bases: dict[tuple[bytes, tuple[str, ...]], np.ndarray],
) -> np.ndarray:
    """Orthonormal basis of the controls: the QR of the columns every outcome with the same
    observed rows shares (constant, strata, plan covariates) is computed once and extended by
    the outcome's own baseline columns, instead of one QR of the whole design per outcome."""
    common = [i for i, name in enumerate(names) if name in shared or name.startswith("stratum[")]
    own = [i for i in range(len(names)) if i not in set(common)]
    key = (np.packbits(mask).tobytes(), tuple(names[i] for i in common))
    if key not in bases:
        bases[key] = np.linalg.qr(controls[:, common])[0]
    return extend_basis(bases[key], controls[:, own])


def _romano_wolf(
    rows: list[dict[str, Any]],
    problem_rows: list[int],
    observed: np.ndarray,
    null: np.ndarray,
) -> None:
    by_family: dict[str, list[int]] = {}
    for k, position in enumerate(problem_rows):
        row = rows[position]
        key = "__indices__" if row["is_index"] else row["family"]
        by_family.setdefault(key, []).append(k)
    for members in by_family.values():
        adjusted = romano_wolf(observed[members], null[:, members])
        for k, value in zip(members, adjusted, strict=True):
            rows[problem_rows[k]]["p_romano_wolf"] = float(value)


def _sharpened(rows: list[dict[str, Any]], plan: AnalysisPlan, index_names: set[str]) -> None:
    """q-values within each family; the family indices form a family of their own."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["skipped"]:
            continue
        key = "__indices__" if row["name"] in index_names else row["family"]
        groups.setdefault(key, []).append(row)
    for members in groups.values():
        q = sharpened_q_values([r["itt"]["p"] for r in members])
        for row, value in zip(members, q, strict=True):
            row["q_sharpened"] = float(value)


def _design_summary(design: Design, plan: AnalysisPlan, primary: str) -> dict[str, Any]:
    n_clusters = None
    if design.cluster is not None:
        n_clusters = {
            arm: int(np.unique(design.cluster[design.treatment == value]).size)
            for arm, value in (("control", 0.0), ("treatment", 1.0))
        }
    return {
        "treatment": plan.treatment,
        "n": design.n,
        "n_treatment": int(design.treatment.sum()),
        "n_control": int((design.treatment == 0).sum()),
        "strata": plan.strata,
        "n_strata": len(design.strata_labels) if plan.strata else 1,
        "cluster": plan.cluster,
        "n_clusters": n_clusters,
        "randomized_by": plan.randomized_by,
        "takeup": plan.takeup,
        "takeup_rate_treatment": (
            float(design.takeup[design.treatment == 1].mean())
            if design.takeup is not None
            else None
        ),
        "attrition": plan.attrition,
        "covariates": list(plan.covariates),
        "se_type": primary,
        "alpha": plan.alpha,
    }


def finite(value: Any, *, warnings: list[str], path: str = "") -> Any:
    """Replace any NaN/inf by null *and say where*, so that no number is silently missing."""
    if isinstance(value, dict):
        return {
            k: finite(v, warnings=warnings, path=f"{path}.{k}" if path else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [finite(v, warnings=warnings, path=f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            warnings.append(f"{path} could not be computed (not a finite number); left empty.")
            return None
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
