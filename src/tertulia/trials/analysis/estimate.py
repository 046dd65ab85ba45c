"""Intention-to-treat (OLS, ANCOVA with strata fixed effects) and treatment-on-the-treated (2SLS).

Estimation is statsmodels' and linearmodels'; this module only builds the regressors, guards
against collinearity, and reads the standard errors the trial needs from one fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

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


def build_regressors(
    design: Design,
    mask: np.ndarray,
    *,
    baseline: list[str],
    covariates: list[str],
    include_treatment: bool = True,
) -> Regressors:
    n = int(mask.sum())
    strata = design.strata[mask]
    present = np.unique(strata)
    names = [CONST]
    if include_treatment:
        names.append(TREATMENT)
    names += [f"stratum[{design.strata_labels[c]}]" for c in present[1:]]
    controls = covariate_block(design, list(dict.fromkeys(baseline + covariates)))
    names += controls
    # One float64 array filled column by column: no boolean blocks, no hstack copy.
    matrix = np.empty((n, len(names)))
    matrix[:, 0] = 1.0
    column = 1
    if include_treatment:
        matrix[:, column] = design.treatment[mask]
        column += 1
    for stratum in present[1:]:
        np.equal(strata, stratum, out=matrix[:, column], casting="unsafe")
        column += 1
    for name in controls:
        matrix[:, column] = design.covariates[name].to_numpy(dtype=float)[mask]
        column += 1
    keep, dropped = collinear_columns(matrix, names)
    if len(keep) < len(names):
        matrix = matrix[:, keep]
    return Regressors(matrix, [names[i] for i in keep], dropped)


def extend_basis(basis: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Orthonormal basis of span(basis, columns), by Gram-Schmidt with re-orthogonalization.

    The columns must be independent of the basis (the collinearity check ensures that); a
    second projection keeps the result orthogonal to rounding even when a column is nearly in
    the span. Costs O(n k) per column instead of a new QR's O(n k^2).
    """
    blocks = [basis]
    for j in range(columns.shape[1]):
        current = np.hstack(blocks) if len(blocks) > 1 else basis
        v = columns[:, j].astype(float, copy=True)
        for _ in range(2):
            v -= current @ (current.T @ v)
        blocks.append((v / np.linalg.norm(v))[:, None])
    return np.hstack(blocks) if len(blocks) > 1 else basis


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


def _t_inference(estimate: float, variance: float, df: float, alpha: float) -> Inference:
    """t-based inference as statsmodels and linearmodels report it (p two-sided, CI by t)."""
    se = float(np.sqrt(variance))
    t = estimate / se if se > 0 else float("nan")
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return Inference(
        se=se,
        p=float(2 * stats.t.sf(abs(t), df)),
        ci_low=estimate - half,
        ci_high=estimate + half,
        df=float(df),
    )


def cluster_codes(cluster: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative integer codes for the clusters and how many distinct ones occur.

    Codes need not be contiguous: `np.bincount` sums per code and empty codes add nothing.
    """
    cluster = np.asarray(cluster)
    if cluster.dtype.kind in "iu" and cluster.size and cluster.min() >= 0:
        codes = cluster.astype(np.int64, copy=False)
        return codes, int(np.count_nonzero(np.bincount(codes)))
    codes = pd.factorize(cluster)[0]
    return codes, int(codes.max()) + 1


def cluster_sum_of_squares(codes: np.ndarray, score: np.ndarray) -> float:
    """Sum over clusters of the squared within-cluster score sum (CR meat of one coefficient)."""
    sums = np.bincount(codes, weights=score)
    return float(sums @ sums)


def control_basis(regressors: Regressors, coefficient: str = TREATMENT) -> np.ndarray:
    """Orthonormal basis of every regressor but `coefficient` (thin QR)."""
    keep = [i for i, name in enumerate(regressors.names) if name != coefficient]
    return np.linalg.qr(regressors.matrix[:, keep])[0]


def ols_effect(
    y: np.ndarray,
    regressors: Regressors,
    *,
    coefficient: str = TREATMENT,
    cluster: np.ndarray | None = None,
    primary: str = "HC2",
    alpha: float = 0.05,
    kinds: tuple[str, ...] = ("classical", "HC1", "HC2", "cluster"),
    basis: np.ndarray | None = None,
) -> Effect:
    """OLS coefficient with classical, HC1, HC2 and (given clusters) CR1 standard errors.

    HC1 and the cluster correction follow Stata (`, robust` and `, cluster()`); HC2 uses the
    leverage of the full design including strata dummies (MacKinnon & White 1985).

    Computed with numpy through Frisch-Waugh-Lovell, for one coefficient only: with d~ the
    coefficient's column residualized on the others (orthonormal `basis`, from a QR), the
    coefficient's row of (X'X)^-1 X' is d~ / d~'d~, so every sandwich is a weighted sum over
    rows (HC) or over cluster sums (CR1, `np.bincount`) and the leverage of the full design is
    the row norm of the basis plus d~^2 / d~'d~. The numbers equal statsmodels' (`OLS` with
    `get_robustcov_results`, as decision 0012 describes) to rounding; tests check this to 1e-8.
    `basis` can be passed when already computed (it spans every column but `coefficient`).
    """
    index = regressors.names.index(coefficient)
    y = np.asarray(y, dtype=float)
    if basis is None:
        basis = control_basis(regressors, coefficient)
    n, k = regressors.matrix.shape
    both = residualize(basis, np.column_stack([regressors.matrix[:, index], y]))
    d, y_resid = both[:, 0], both[:, 1]
    ss = float(d @ d)
    estimate = float(d @ y_resid) / ss
    resid = y_resid - d * estimate
    df_resid = float(n - k)
    weight = d / ss  # the coefficient's row of (X'X)^-1 X'
    effect = Effect(estimate=estimate, n=int(y.size), primary=primary)
    if "classical" in kinds:
        sigma2 = float(resid @ resid) / df_resid
        effect.by_type["classical"] = _t_inference(estimate, sigma2 / ss, df_resid, alpha)
    if "HC1" in kinds or "HC2" in kinds:
        score2 = (weight * resid) ** 2
        if "HC1" in kinds:
            variance = float(score2.sum()) * n / df_resid
            effect.by_type["HC1"] = _t_inference(estimate, variance, df_resid, alpha)
        if "HC2" in kinds:
            leverage = np.einsum("ij,ij->i", basis, basis) + d * weight
            variance = float((score2 / (1.0 - leverage)).sum())
            effect.by_type["HC2"] = _t_inference(estimate, variance, df_resid, alpha)
    if cluster is not None and "cluster" in kinds:
        codes, groups = cluster_codes(cluster)
        meat = cluster_sum_of_squares(codes, weight * resid)
        variance = meat * groups / (groups - 1) * (n - 1) / df_resid
        effect.by_type["cluster"] = _t_inference(estimate, variance, float(groups - 1), alpha)
    if primary not in effect.by_type:
        raise TrialInputError(f"se_type '{primary}' needs a cluster column in the plan")
    return effect


def wald_test(
    y: np.ndarray, matrix: np.ndarray, tested: list[int] | np.ndarray, *, cov_type: str = "HC1"
) -> dict[str, float] | None:
    """F-test that the `tested` columns' coefficients are jointly zero (HC1 or nonrobust).

    Same numbers as statsmodels' `OLS(...).fit(cov_type=...).f_test(R)`: F = b'V^-1 b / q with
    F(q, n - k) p-value, the block V of the sandwich computed through Frisch-Waugh-Lovell.
    Returns None when the tested columns are (near) collinear with the others, for the caller
    to fall back on statsmodels' pseudo-inverse.
    """
    y = np.asarray(y, dtype=float)
    n, k = matrix.shape
    tested = np.asarray(tested, dtype=int)
    others = np.setdiff1d(np.arange(k), tested)
    basis = np.linalg.qr(matrix[:, others])[0]
    z = residualize(basis, matrix[:, tested])
    y_resid = residualize(basis, y)
    raw = np.einsum("ij,ij->j", matrix[:, tested], matrix[:, tested])
    zz = z.T @ z
    if np.any(np.diag(zz) <= COLLINEAR_TOL * np.where(raw > 0, raw, 1.0)):
        return None
    try:
        chol = np.linalg.cholesky(zz)
    except np.linalg.LinAlgError:
        return None
    if np.min(np.abs(np.diag(chol))) ** 2 <= COLLINEAR_TOL * float(np.max(np.diag(zz))):
        return None
    zz_inv = np.linalg.inv(zz)
    beta = zz_inv @ (z.T @ y_resid)
    resid = y_resid - z @ beta
    df_resid = n - k
    if cov_type == "HC1":
        scored = z * resid[:, None]
        cov = zz_inv @ (scored.T @ scored) @ zz_inv * (n / df_resid)
    elif cov_type == "nonrobust":
        cov = zz_inv * float(resid @ resid) / df_resid
    else:
        return None
    q = tested.size
    try:
        f = float(beta @ np.linalg.solve(cov, beta)) / q
    except np.linalg.LinAlgError:
        return None  # e.g. a perfect fit: no residual variance to test against
    if not np.isfinite(f):
        return None
    return {
        "f": f,
        "df_num": q,
        "df_denom": float(df_resid),
        "p": float(stats.f.sf(f, q, df_resid)),
    }


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
    """TOT: take-up instrumented by assignment, same controls as the ITT.

    The controls are partialled out first (Frisch-Waugh-Lovell holds for 2SLS when every
    control is exogenous); with one instrument and one endogenous regressor the 2SLS estimate
    is z~'y~ / z~'x~. The covariance is linearmodels' `IV2SLS(...).fit(debiased=True,
    extra_df=k)` written out in numpy: robust, sum(z~^2 e^2) / (z~'x~)^2 * n / (n - 1 - k), or
    clustered, with the sum over clusters of z~e and the factor G/(G-1) (n-1)/(n-1-k) (CR1 of
    the full regression); t with n - 1 df as linearmodels reports it. linearmodels' per-cluster
    Python loop took half a minute at a million rows (decision 0012); tests check the numbers
    equal linearmodels' to 1e-8.
    """
    n, k = y.size, basis.shape[1]
    stacked = residualize(
        basis, np.column_stack([np.asarray(y, float), np.asarray(takeup, float), instrument])
    )
    y_resid, endog, instruments = stacked[:, 0], stacked[:, 1], stacked[:, 2]
    zx = float(instruments @ endog)
    estimate = float(instruments @ y_resid) / zx
    score = instruments * (y_resid - endog * estimate)
    scale = n / (n - 1 - k)
    zz = float(instruments @ instruments)
    first = zx / zz
    first_score = instruments * (endog - instruments * first)
    if cluster is not None:
        codes, groups = cluster_codes(cluster)
        correction = groups / (groups - 1)
        variance = scale * correction * (n - 1) / n * cluster_sum_of_squares(codes, score)
        # statsmodels' CR1 of the one-column first stage: G/(G-1) (N-1)/(N-1).
        first_variance = correction * cluster_sum_of_squares(codes, first_score) / zz**2
        se_type = "cluster"
    else:
        variance = scale * float(score @ score)
        first_variance = n / (n - 1) * float(first_score @ first_score) / zz**2
        se_type = "HC1"
    inference = _t_inference(estimate, variance / zx**2, float(n - 1), alpha)
    # One instrument: the first-stage F is the squared t of assignment in the first stage,
    # with the same kind of covariance.
    return {
        "estimate": estimate,
        "se": inference.se,
        "ci_low": inference.ci_low,
        "ci_high": inference.ci_high,
        "p": inference.p,
        "se_type": se_type,
        "first_stage_f": first**2 / first_variance,
    }
