"""Lee (2009) bounds against trimming by hand, a closed form, and a bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tertulia.trials.analysis.lee import lee_bounds, trimmed_mean


def test_trimmed_mean_matches_dropping_observations_by_hand():
    rng = np.random.default_rng(0)
    values = rng.normal(size=200)
    ordered = np.sort(values)
    assert trimmed_mean(values, 0.1, keep="low")[0] == pytest.approx(ordered[:180].mean())
    assert trimmed_mean(values, 0.1, keep="high")[0] == pytest.approx(ordered[20:].mean())


def test_trimmed_mean_splits_ties_at_the_cutoff():
    values = np.array([0.0] * 6 + [1.0] * 4)  # 40% ones
    mean, _, _ = trimmed_mean(values, 0.2, keep="low")  # drop two of the ones
    assert mean == pytest.approx(2 / 8)


def test_bounds_converge_to_truncated_normal_means():
    # Control: N(0,1), 60% observed at random. Treatment: N(0,1), 80% observed at random.
    # p = 0.25, so the bounds are the means of N(0,1) truncated above/below its 75%/25% quantile.
    rng = np.random.default_rng(1)
    n = 400_000
    treatment = (np.arange(n) % 2).astype(float)
    y = rng.standard_normal(n)
    observed = rng.random(n) < np.where(treatment == 1, 0.8, 0.6)
    bounds = lee_bounds(np.where(observed, y, np.nan), treatment, observed)
    cut = stats.norm.ppf(0.75)
    upper_true = stats.truncnorm.mean(-cut, np.inf)
    assert bounds.trimming_share == pytest.approx(0.25, abs=0.005)
    assert bounds.trimmed_arm == "treatment"
    assert bounds.upper == pytest.approx(upper_true, abs=0.01)
    assert bounds.lower == pytest.approx(-upper_true, abs=0.01)


def test_analytic_standard_errors_agree_with_a_bootstrap():
    rng = np.random.default_rng(2)
    n = 3000
    treatment = (np.arange(n) % 2).astype(float)
    y = rng.normal(0.3 * treatment, 1.0)
    observed = rng.random(n) < np.where(treatment == 1, 0.9, 0.75)
    y = np.where(observed, y, np.nan)
    bounds = lee_bounds(y, treatment, observed)
    draws = []
    for _ in range(400):
        pick = rng.integers(0, n, n)
        b = lee_bounds(y[pick], treatment[pick], observed[pick])
        draws.append((b.lower, b.upper))
    boot = np.std(draws, axis=0, ddof=1)
    assert bounds.se_lower == pytest.approx(boot[0], rel=0.15)
    assert bounds.se_upper == pytest.approx(boot[1], rel=0.15)
    assert bounds.ci_low < bounds.lower < bounds.upper < bounds.ci_high


def test_control_arm_is_trimmed_when_it_responds_more():
    rng = np.random.default_rng(4)
    n = 2000
    treatment = (np.arange(n) % 2).astype(float)
    y = rng.normal(size=n)
    observed = rng.random(n) < np.where(treatment == 1, 0.6, 0.9)
    bounds = lee_bounds(np.where(observed, y, np.nan), treatment, observed)
    assert bounds.trimmed_arm == "control"
    assert bounds.lower < 0 < bounds.upper
