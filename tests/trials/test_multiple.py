"""Sharpened q-values and Romano–Wolf p-values against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import fdrcorrection_twostage

from tertulia.trials.analysis.multiple import romano_wolf, sharpened_q_values

# Benjamini & Hochberg (1995, JRSS-B 57:289), section 4.2: the 15 p-values of the classic
# worked example, also used by Benjamini, Krieger & Yekutieli (2006).
BH_1995 = np.array(
    [
        0.0001,
        0.0004,
        0.0019,
        0.0095,
        0.0201,
        0.0278,
        0.0298,
        0.0344,
        0.0459,
        0.3240,
        0.4262,
        0.5719,
        0.6528,
        0.7590,
        1.0000,
    ]
)


def _anderson_loop(p: np.ndarray) -> np.ndarray:
    """Anderson's (2008) Stata program, transcribed statement by statement."""
    m = p.size
    order = np.argsort(p, kind="stable")
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(1, m + 1)
    q_values = np.ones(m)
    q = 1.0
    while q > 0.0005:
        q_adj = q / (1 + q)
        reject1 = q_adj * rank / m >= p
        total1 = int(rank[reject1].max()) if reject1.any() else 0
        q_2st = q_adj * m / (m - total1) if total1 < m else np.inf
        reject2 = q_2st * rank / m >= p
        total2 = int(rank[reject2].max()) if reject2.any() else 0
        q_values[rank <= total2] = round(q, 3)
        q -= 0.001
    return q_values


@pytest.mark.parametrize("seed", range(5))
def test_sharpened_q_values_match_andersons_program(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.02, 3), rng.uniform(0, 1, 7)])
    assert np.allclose(sharpened_q_values(p), _anderson_loop(p))


def test_sharpened_q_values_match_andersons_program_on_bh_1995_example():
    assert np.allclose(sharpened_q_values(BH_1995), _anderson_loop(BH_1995))


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2])
def test_q_at_most_alpha_iff_statsmodels_bky_rejects_at_alpha(alpha):
    q = sharpened_q_values(BH_1995)
    rejected, *_ = fdrcorrection_twostage(BH_1995, alpha=alpha, method="bky", maxiter=1)
    assert np.array_equal(q <= alpha + 1e-12, rejected)


def test_sharpened_q_values_are_ordered_like_p_and_never_below_them_for_one_test():
    q = sharpened_q_values(BH_1995)
    assert np.all(np.diff(q[np.argsort(BH_1995)]) >= 0)
    assert sharpened_q_values([0.03])[0] == pytest.approx(0.031, abs=0.001)


def _romano_wolf_loop(t_obs: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Romano & Wolf (2005) step-down written out hypothesis by hypothesis."""
    k = t_obs.size
    order = sorted(range(k), key=lambda j: -abs(t_obs[j]))
    out = np.zeros(k)
    previous = 0.0
    for position, j in enumerate(order):
        remaining = order[position:]
        count = 0
        for draw in null:
            if max(abs(draw[r]) for r in remaining) >= abs(t_obs[j]):
                count += 1
        previous = max(previous, (count + 1) / (len(null) + 1))
        out[j] = previous
    return out


def test_romano_wolf_matches_the_step_down_written_out():
    rng = np.random.default_rng(7)
    cov = np.array([[1, 0.5, 0.2], [0.5, 1, 0.3], [0.2, 0.3, 1]])
    null = rng.multivariate_normal(np.zeros(3), cov, size=300)
    t_obs = np.array([2.5, 0.4, -1.9])
    assert np.allclose(romano_wolf(t_obs, null), _romano_wolf_loop(t_obs, null))


def test_romano_wolf_for_one_outcome_is_the_permutation_p_value():
    rng = np.random.default_rng(3)
    null = rng.standard_normal((999, 1))
    expected = (1 + np.sum(np.abs(null[:, 0]) >= 1.7)) / 1000
    assert romano_wolf(np.array([1.7]), null)[0] == pytest.approx(expected)
