"""Balance of baseline characteristics across arms, and attrition by arm.

The balance table reports means and SDs by arm, the difference estimated with strata fixed
effects (HC1), and the normalized difference (difference in means over the square root of the
average of the two variances; Imbens & Rubin 2015, ch. 14), which does not grow with the sample
as a t statistic does. The joint test of orthogonality regresses the assignment on every
baseline variable (with strata fixed effects) and tests that they are jointly zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import statsmodels.api as sm

from tertulia.trials.analysis.checks import Design, covariate_block
from tertulia.trials.analysis.estimate import (
    build_regressors,
    control_basis,
    ols_effect,
    wald_test,
)


def _arm_stats(values: np.ndarray, treatment: np.ndarray) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for arm, name in ((0.0, "control"), (1.0, "treatment")):
        v = values[(treatment == arm) & ~np.isnan(values)]
        out[f"n_{name}"] = int(v.size)
        out[f"mean_{name}"] = float(v.mean()) if v.size else float("nan")
        out[f"sd_{name}"] = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return out


def balance_table(design: Design, columns: list[str]) -> list[dict[str, Any]]:
    rows = []
    raw = design.data
    # The design (constant, treatment, strata) only depends on which rows are observed, so
    # variables with the same missing rows share one design and one QR.
    designs: dict[bytes, tuple[Any, np.ndarray]] = {}
    for column in columns:
        values = raw[column].astype(float).to_numpy()
        row: dict[str, Any] = {"variable": column, **_arm_stats(values, design.treatment)}
        pooled = np.sqrt((row["sd_control"] ** 2 + row["sd_treatment"] ** 2) / 2)
        row["normalized_difference"] = (
            (row["mean_treatment"] - row["mean_control"]) / pooled if pooled > 0 else 0.0
        )
        mask = ~np.isnan(values)
        key = np.packbits(mask).tobytes()
        if key not in designs:
            regressors = build_regressors(design, mask, baseline=[], covariates=[])
            designs[key] = (regressors, control_basis(regressors))
        regressors, basis = designs[key]
        effect = ols_effect(values[mask], regressors, primary="HC1", kinds=("HC1",), basis=basis)
        row["difference"] = effect.estimate
        row["se"] = effect.headline.se
        row["p"] = effect.headline.p
        rows.append(row)
    return rows


def _f_test(y: np.ndarray, matrix: np.ndarray, tested: list[int], cov_type: str) -> dict:
    """Joint F-test of the `tested` coefficients: numpy (`wald_test`) when the design has full
    rank, statsmodels' pseudo-inverse when it does not (the same numbers either way)."""
    test = wald_test(y, matrix, tested, cov_type=cov_type)
    if test is not None:
        return test
    fit = sm.OLS(y, matrix).fit()
    if cov_type != "nonrobust":
        fit = fit.get_robustcov_results(cov_type=cov_type)
    restriction = np.zeros((len(tested), matrix.shape[1]))
    restriction[np.arange(len(tested)), tested] = 1.0
    result = fit.f_test(restriction)
    return {
        "f": float(np.squeeze(result.fvalue)),
        "df_num": int(result.df_num),
        "df_denom": float(result.df_denom),
        "p": float(result.pvalue),
    }


def joint_orthogonality(
    design: Design, columns: list[str], *, mask: np.ndarray | None = None, cov_type: str = "HC1"
) -> dict[str, Any] | None:
    """F-test that the baseline variables do not predict the assignment (strata FE included)."""
    if not columns:
        return None
    mask = np.ones(design.n, dtype=bool) if mask is None else mask
    regressors = build_regressors(
        design, mask, baseline=[], covariates=columns, include_treatment=False
    )
    tested = [
        i for i, name in enumerate(regressors.names) if name in covariate_block(design, columns)
    ]
    if not tested:
        return None
    test = _f_test(design.treatment[mask], regressors.matrix, tested, cov_type)
    return {
        **test,
        "n": int(mask.sum()),
        "variables": [regressors.names[i] for i in tested],
        "cov_type": cov_type,
    }


def attrition_summary(
    design: Design, columns: list[str], *, primary: str, alpha: float
) -> dict[str, Any] | None:
    """Attrition rate by arm, the difference (strata FE) and whether attrition is selective.

    The selective-attrition test interacts the assignment with baseline variables and tests the
    interactions jointly: if they matter, respondents differ by arm in who they are.
    """
    if design.attrited is None:
        return None
    attrited = design.attrited
    everyone = np.ones(design.n, dtype=bool)
    regressors = build_regressors(design, everyone, baseline=[], covariates=[])
    effect = ols_effect(
        attrited,
        regressors,
        cluster=design.cluster,
        primary=primary,
        alpha=alpha,
        kinds=(primary,),
    )
    headline = effect.headline
    out: dict[str, Any] = {
        "rate_overall": float(attrited.mean()),
        "rate_control": float(attrited[design.treatment == 0].mean()),
        "rate_treatment": float(attrited[design.treatment == 1].mean()),
        "n_control": int((design.treatment == 0).sum()),
        "n_treatment": int((design.treatment == 1).sum()),
        "difference": effect.estimate,
        "se": headline.se,
        "p": headline.p,
        "ci_low": headline.ci_low,
        "ci_high": headline.ci_high,
        "se_type": primary,
        "selective": None,
    }
    controls = covariate_block(design, columns)
    if controls:
        base = build_regressors(design, everyone, baseline=[], covariates=columns)
        names = list(base.names)
        keep_controls = [c for c in controls if c in names]
        interactions = design.covariates[keep_controls].to_numpy() * design.treatment[:, None]
        matrix = np.hstack([base.matrix, interactions])
        tested = list(range(base.matrix.shape[1], matrix.shape[1]))
        test = _f_test(attrited, matrix, tested, "HC1")
        out["selective"] = {
            "f": test["f"],
            "df_num": test["df_num"],
            "p": test["p"],
            "variables": keep_controls,
        }
    return out
