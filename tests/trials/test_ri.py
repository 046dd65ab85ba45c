"""Randomization inference: draws respect the design; vectorized t's equal statsmodels' fits."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import statsmodels.api as sm

from tertulia.trials.analysis import ri


@pytest.fixture
def trial():
    rng = np.random.default_rng(5)
    n = 120
    strata = np.repeat(np.arange(4), 30)
    treatment = np.zeros(n)
    for s in range(4):
        treatment[rng.permutation(np.flatnonzero(strata == s))[: 10 + 2 * s]] = 1
    x = rng.normal(size=n)
    y = 0.4 * treatment + x + rng.normal(size=n) * (1 + treatment)
    dummies = (strata[:, None] == np.arange(1, 4)).astype(float)
    controls = np.column_stack([np.ones(n), dummies, x])
    return y, treatment, strata, controls


def test_draws_keep_each_stratums_number_treated(trial):
    _, treatment, strata, _ = trial
    draws = next(ri.assignment_draws(treatment, strata, 50, seed=1))
    for s in range(4):
        assert np.all(draws[strata == s].sum(axis=0) == treatment[strata == s].sum())
    assert not np.all(draws == treatment[:, None])


def test_cluster_draws_move_whole_clusters(trial):
    _, _, strata, _ = trial
    unit = np.arange(120) // 5
    treatment = (unit % 2).astype(float)
    draws = next(ri.assignment_draws(treatment, strata, 30, seed=2, unit=unit))
    for u in np.unique(unit):
        members = draws[unit == u]
        assert np.all(members == members[0])


def test_vectorized_t_equals_statsmodels_hc0_t(trial):
    y, treatment, strata, controls = trial
    problem = ri.make_problem(y, controls, np.arange(y.size), None)
    draws = next(ri.assignment_draws(treatment, strata, 5, seed=3))
    t = ri.t_statistics(problem, draws)
    for k in range(5):
        fit = sm.OLS(y, np.column_stack([draws[:, k], controls])).fit(cov_type="HC0")
        assert t[k] == pytest.approx(fit.tvalues[0], rel=1e-8)


def test_vectorized_t_equals_statsmodels_cluster_t_without_corrections(trial):
    y, treatment, strata, controls = trial
    cluster = np.arange(y.size) // 3
    problem = ri.make_problem(y, controls, np.arange(y.size), cluster)
    t = ri.t_statistics(problem, treatment[:, None])[0]
    fit = sm.OLS(y, np.column_stack([treatment, controls])).fit(
        cov_type="cluster", cov_kwds={"groups": cluster, "use_correction": False}
    )
    assert t == pytest.approx(fit.tvalues[0], rel=1e-8)


def test_p_value_matches_full_enumeration_of_a_small_trial():
    # 10 units, 5 treated, no strata: all 252 assignments, each equally likely.
    rng = np.random.default_rng(8)
    y = rng.normal(size=10)
    treatment = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    y = y + treatment
    controls = np.ones((10, 1))
    problem = ri.make_problem(y, controls, np.arange(10), None)
    observed = abs(ri.t_statistics(problem, treatment[:, None])[0])
    every = np.zeros((10, 252))
    for k, chosen in enumerate(combinations(range(10), 5)):
        every[list(chosen), k] = 1
    exact = np.mean(np.abs(ri.t_statistics(problem, every)) >= observed - 1e-10)
    p, _, _ = ri.ri_p_values([problem], treatment, np.zeros(10, dtype=int), 20_000, seed=4)
    assert p[0] == pytest.approx(exact, abs=0.01)


def test_same_seed_same_p_values(trial):
    y, treatment, strata, controls = trial
    problem = ri.make_problem(y, controls, np.arange(y.size), None)
    first = ri.ri_p_values([problem], treatment, strata, 300, seed=9)
    again = ri.ri_p_values([problem], treatment, strata, 300, seed=9)
    other = ri.ri_p_values([problem], treatment, strata, 300, seed=10)
    assert first[0] == again[0]
    assert np.array_equal(first[2], again[2])
    assert not np.array_equal(first[2], other[2])
