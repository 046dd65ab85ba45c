"""Intention-to-treat (OLS, ANCOVA with strata fixed effects) and treatment-on-the-treated (2SLS).

Estimation is statsmodels' and linearmodels'; this module only builds the regressors, guards
against collinearity, and reads the standard errors the trial needs from one fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from linearmodels.iv import IV2SLS

from tertulia.trials.analysis.checks import Design, covariate_block
from tertulia.trials.analysis.errors import TrialInputError, Warnings

CONST = "const"
TREATMENT = "treatment"
COLLINEAR_TOL = 1e-10  # share of a column's squared norm not explained by earlier ones


@dataclass(frozen=True)
class Inference:
    se: float
    p: float
    ci_low: float
    ci_high: float
    df: float | None


@dataclass
class Effect:
    """One coefficient with every standard error the report shows; `primary` is the headline."""

    estimate: float
    n: int
    primary: str
    by_type: dict[str, Inference] = field(default_factory=dict)

    @property
    def headline(self) -> Inference:
        return self.by_type[self.primary]


@dataclass
class Regressors:
    """Design matrix in a fixed order: constant, treatment, strata dummies, baseline, covariates."""

    matrix: np.ndarray
    names: list[str]
    dropped: list[tuple[str, list[str]]]

    def without_treatment(self) -> tuple[np.ndarray, list[str]]:
        keep = [i for i, name in enumerate(self.names) if name != TREATMENT]
        return self.matrix[:, keep], [self.names[i] for i in keep]


def strata_dummies(strata: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Dummies for every stratum present but the first, the constant absorbing that one."""
    present = np.unique(strata)
    if present.size <= 1:
        return np.empty((strata.size, 0)), []
    columns = present[1:]
    dummies = (strata[:, None] == columns[None, :]).astype(float)
    return dummies, [f"stratum[{labels[c]}]" for c in columns]


def build_regressors(
    design: Design,
    mask: np.ndarray,
    *,
    baseline: list[str],
    covariates: list[str],
    include_treatment: bool = True,
) -> Regressors:
    n = int(mask.sum())
    blocks: list[np.ndarray] = [np.ones((n, 1))]
    names = [CONST]
    if include_treatment:
        blocks.append(design.treatment[mask, None])
        names.append(TREATMENT)
    dummies, dummy_names = strata_dummies(design.strata[mask], design.strata_labels)
    blocks.append(dummies)
    names += dummy_names
    controls = covariate_block(design, list(dict.fromkeys(baseline + covariates)))
    if controls:
        blocks.append(design.covariates.loc[mask, controls].to_numpy(dtype=float))
        names += controls
    matrix = np.hstack(blocks)
    keep, dropped = collinear_columns(matrix, names)
    return Regressors(matrix[:, keep], [names[i] for i in keep], dropped)


def collinear_columns(
    matrix: np.ndarray, names: list[str]
) -> tuple[list[int], list[tuple[str, list[str]]]]:
    """Columns to keep, and each dropped column with the earlier columns it is a combination of.

    Columns are checked in order, so the constant, treatment and strata always win over a
    covariate that duplicates them: the covariate is the one to drop. Works on the k x k
    cross-product matrix, so the cost does not grow with the number of rows beyond one product.
    """
    gram = matrix.T @ matrix
    scale = np.sqrt(np.diag(gram))
    scale = np.where(scale > 0, scale, 1.0)
    gram = gram / np.outer(scale, scale)
    keep: list[int] = []
    dropped: list[tuple[str, list[str]]] = []
    for j, name in enumerate(names):
        if gram[j, j] == 0:
            dropped.append((name, []))
            continue
        if keep:
            sub = gram[np.ix_(keep, keep)]
            coef = np.linalg.solve(sub, gram[keep, j])
            residual = gram[j, j] - gram[keep, j] @ coef
        else:
            coef, residual = np.zeros(0), gram[j, j]
        if residual > COLLINEAR_TOL:
            keep.append(j)
            continue
        dropped.append((name, [names[keep[i]] for i in np.flatnonzero(np.abs(coef) > 1e-6)]))
    return keep, dropped


def report_dropped(
    regressors: Regressors, outcome: str, warnings: Warnings, *, treatment_column: str
) -> None:
    for name, partners in regressors.dropped:
        if name == TREATMENT:
            raise TrialInputError(
                f"treatment '{treatment_column}' is collinear with the strata or covariates in "
                f"the regression for '{outcome}'; a covariate must not encode the assignment."
            )
        if name.startswith("stratum["):
            continue  # a stratum with no respondents for this outcome: nothing to estimate
        with_what = ", ".join(partners) if partners else "the constant (it does not vary)"
        warnings.add(
            f"covariate '{name}' is collinear with {with_what} in the regression for "
            f"'{outcome}' and was dropped; remove it from the plan to silence this."
        )


def _inference(result: object, index: int, alpha: float, df: float | None) -> Inference:
    ci = np.asarray(result.conf_int(alpha))[index]  # type: ignore[attr-defined]
    return Inference(
        se=float(np.asarray(result.bse)[index]),  # type: ignore[attr-defined]
        p=float(np.asarray(result.pvalues)[index]),  # type: ignore[attr-defined]
        ci_low=float(ci[0]),
        ci_high=float(ci[1]),
        df=df,
    )


def ols_effect(
    y: np.ndarray,
    regressors: Regressors,
    *,
    coefficient: str = TREATMENT,
    cluster: np.ndarray | None = None,
    primary: str = "HC2",
    alpha: float = 0.05,
    kinds: tuple[str, ...] = ("classical", "HC1", "HC2", "cluster"),
) -> Effect:
    """OLS coefficient with classical, HC1, HC2 and (given clusters) CR1 standard errors.

    HC1 and the cluster correction follow Stata (`, robust` and `, cluster()`); HC2 uses the
    leverage of the full design including strata dummies (MacKinnon & White 1985).
    """
    index = regressors.names.index(coefficient)
    fit = sm.OLS(y, regressors.matrix).fit()
    df_resid = float(fit.df_resid)
    effect = Effect(estimate=float(fit.params[index]), n=int(y.size), primary=primary)
    if "classical" in kinds:
        effect.by_type["classical"] = _inference(fit, index, alpha, df_resid)
    for kind in ("HC1", "HC2"):
        if kind not in kinds:
            continue
        robust = fit.get_robustcov_results(cov_type=kind, use_t=True)
        effect.by_type[kind] = _inference(robust, index, alpha, df_resid)
    if cluster is not None and "cluster" in kinds:
        codes = pd.factorize(cluster)[0]
        clustered = fit.get_robustcov_results(
            cov_type="cluster", groups=codes, use_correction=True, df_correction=True, use_t=True
        )
        effect.by_type["cluster"] = _inference(
            clustered, index, alpha, float(np.unique(codes).size - 1)
        )
    if primary not in effect.by_type:
        raise TrialInputError(f"se_type '{primary}' needs a cluster column in the plan")
    return effect


def residualize(basis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """What is left of `values` after projecting on the controls (orthonormal `basis`)."""
    return values - basis @ (basis.T @ values)


def iv_effect(
    y: np.ndarray,
    takeup: np.ndarray,
    instrument: np.ndarray,
    basis: np.ndarray,
    *,
    cluster: np.ndarray | None = None,
    alpha: float = 0.05,
) -> dict[str, float | str | None]:
    """TOT: take-up instrumented by assignment (linearmodels IV2SLS), same controls as the ITT.

    The controls are partialled out first (Frisch-Waugh-Lovell holds for 2SLS when every
    control is exogenous), and `extra_df` tells linearmodels how many columns were absorbed,
    so estimate and standard errors equal those of the full 2SLS regression while
    linearmodels only sees three columns: at a million rows its rank checks and clustering
    on the full design took minutes (docs/decisions/0012-estimation-libraries.md).
    """
    k = basis.shape[1]
    dependent = pd.Series(residualize(basis, y), name="y")
    endog = pd.Series(residualize(basis, takeup), name="takeup")
    instruments = pd.Series(residualize(basis, instrument), name=TREATMENT)
    model = IV2SLS(dependent, None, endog, instruments)
    if cluster is not None:
        fit = model.fit(
            cov_type="clustered", clusters=pd.factorize(cluster)[0], debiased=True, extra_df=k
        )
        se_type = "cluster"
    else:
        fit = model.fit(cov_type="robust", debiased=True, extra_df=k)
        se_type = "HC1"
    ci = fit.conf_int(level=1 - alpha).loc["takeup"]
    # One instrument: the first-stage F is the squared t of assignment in the first stage,
    # with the same covariance. statsmodels' cluster sums are vectorized; linearmodels'
    # `first_stage` loops over clusters in Python, which takes seconds at a million rows.
    first = sm.OLS(endog.to_numpy(), instruments.to_numpy()[:, None]).fit()
    if cluster is not None:
        first = first.get_robustcov_results(
            cov_type="cluster", groups=pd.factorize(cluster)[0], use_correction=True
        )
    else:
        first = first.get_robustcov_results(cov_type="HC1")
    return {
        "estimate": float(fit.params["takeup"]),
        "se": float(fit.std_errors["takeup"]),
        "ci_low": float(ci.iloc[0]),
        "ci_high": float(ci.iloc[1]),
        "p": float(fit.pvalues["takeup"]),
        "se_type": se_type,
        "first_stage_f": float(first.tvalues[0] ** 2),
    }
