"""Lee (2009) bounds on the effect among always-respondents under differential attrition.

Lee, D. S. (2009), "Training, wages, and sample selection: Estimating sharp bounds on treatment
effects", Review of Economic Studies 76:1071-1102. The arm with the higher response rate has its
observed outcomes trimmed by p = (q_high - q_low) / q_high from the top (lower bound) or the
bottom (upper bound). Trimming is fractional, so ties at the cut-off (common in survey scales
and 0/1 outcomes) are split exactly rather than dropped whole.

Standard errors are the analytic ones of Lee's Proposition 3 (trimmed-mean variance, plus the
estimated trimming share through the delta method, plus the untrimmed arm's mean); the
confidence interval for the effect is Imbens & Manski's (2004) interval for a partially
identified parameter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class LeeBounds:
    lower: float
    upper: float
    se_lower: float
    se_upper: float
    ci_low: float
    ci_high: float
    trimming_share: float
    trimmed_arm: str
    response_rate_treatment: float
    response_rate_control: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def trimmed_mean(values: np.ndarray, share: float, *, keep: str) -> tuple[float, float, float]:
    """Mean, variance and cut-off of the values after trimming `share` of them.

    keep="low" drops the top `share` (keeps the low values); keep="high" drops the bottom.
    """
    v = np.sort(np.asarray(values, dtype=float))
    if keep == "high":
        v = v[::-1]
    n = v.size
    mass = (1.0 - share) * n
    before = np.arange(n, dtype=float)
    weight = np.clip(mass - before, 0.0, 1.0)
    mean = float(weight @ v / mass)
    variance = float(weight @ (v - mean) ** 2 / mass)
    cut = float(v[min(int(np.ceil(mass)) - 1, n - 1)])
    return mean, variance, cut


def _imbens_manski(lower: float, upper: float, se_l: float, se_u: float, alpha: float):
    width = max(upper - lower, 0.0)
    scale = max(se_l, se_u)
    if scale == 0:
        return lower, upper

    def coverage(c: float) -> float:
        return stats.norm.cdf(c + width / scale) - stats.norm.cdf(-c) - (1 - alpha)

    c = optimize.brentq(coverage, 0.0, stats.norm.ppf(1 - alpha / 2) + 1e-9)
    return lower - c * se_l, upper + c * se_u


def lee_bounds(
    outcome: np.ndarray, treatment: np.ndarray, observed: np.ndarray, *, alpha: float = 0.05
) -> LeeBounds:
    """Bounds for the treated-minus-control difference among units observed in either arm."""
    outcome = np.asarray(outcome, dtype=float)
    treatment = np.asarray(treatment, dtype=float)
    observed = np.asarray(observed, dtype=bool) & ~np.isnan(outcome)
    n = treatment.size
    share_t = float(treatment.mean())
    arms = {}
    for arm, name in ((1.0, "treatment"), (0.0, "control")):
        in_arm = treatment == arm
        values = outcome[in_arm & observed]
        if values.size < 2:
            raise ValueError(f"Lee bounds need at least two respondents in the {name} arm")
        arms[name] = (values, float(observed[in_arm].mean()), int(in_arm.sum()))
    q_t, q_c = arms["treatment"][1], arms["control"][1]
    trimmed_arm, other = ("treatment", "control") if q_t >= q_c else ("control", "treatment")
    q_high, q_low = max(q_t, q_c), min(q_t, q_c)
    p = (q_high - q_low) / q_high
    trimmed_values, _, n_high = arms[trimmed_arm]
    other_values, _, n_other = arms[other]
    other_mean = float(other_values.mean())
    other_var = float(other_values.var(ddof=1)) / other_values.size

    # Var(p-hat) by the delta method on the two response rates.
    var_p = (1 - p) ** 2 * ((1 - q_t) / (q_t * n * share_t) + (1 - q_c) / (q_c * n * (1 - share_t)))
    results = {}
    for keep in ("low", "high"):
        mean, variance, cut = trimmed_mean(trimmed_values, p, keep=keep)
        n_obs = trimmed_values.size
        var_mean = (variance + p * (cut - mean) ** 2) / ((1 - p) * n_obs)
        var_mean += ((cut - mean) / (1 - p)) ** 2 * var_p
        results[keep] = (mean, var_mean)

    if trimmed_arm == "treatment":
        lower = results["low"][0] - other_mean
        upper = results["high"][0] - other_mean
        var_lower, var_upper = results["low"][1], results["high"][1]
    else:
        lower = other_mean - results["high"][0]
        upper = other_mean - results["low"][0]
        var_lower, var_upper = results["high"][1], results["low"][1]
    se_lower = float(np.sqrt(var_lower + other_var))
    se_upper = float(np.sqrt(var_upper + other_var))
    ci_low, ci_high = _imbens_manski(lower, upper, se_lower, se_upper, alpha)
    return LeeBounds(
        lower=float(lower),
        upper=float(upper),
        se_lower=se_lower,
        se_upper=se_upper,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        trimming_share=float(p),
        trimmed_arm=trimmed_arm,
        response_rate_treatment=q_t,
        response_rate_control=q_c,
    )
