"""Power and MDE against statsmodels and the textbook design effect."""

from __future__ import annotations

import pytest
from statsmodels.stats.power import NormalIndPower

from tertulia.trials.analysis.power import Design, mde, power, sample_size


def test_individual_power_matches_statsmodels():
    design = Design(n=2710, sd=1.0)
    expected = NormalIndPower().power(effect_size=0.1, nobs1=1355, alpha=0.05, ratio=1.0)
    assert power(0.1, design) == pytest.approx(expected, rel=1e-10)


def test_mde_is_the_effect_with_the_target_power():
    design = Design(n=2710, sd=0.3, treated_share=0.4, r2=0.3)
    effect = mde(design, power_target=0.8)
    assert power(effect, design) == pytest.approx(0.8, abs=0.001)


def test_mde_of_an_individual_trial_is_2_8_standard_errors():
    # Bloom (1995): with alpha = .05 and power .8 the MDE is 2.8 SE; SE = 2/sqrt(n) for P = .5.
    assert mde(Design(n=1600)) == pytest.approx(2.8 * 2 / 40, rel=0.001)


def test_clustering_both_arms_multiplies_the_variance_by_the_design_effect():
    plain = Design(n=2710)
    clustered = Design(n=2710, cluster_size=50, icc=0.05)
    assert mde(clustered) == pytest.approx(mde(plain) * (1 + 49 * 0.05) ** 0.5)


def test_clustering_only_the_treated_arm_costs_less_than_clustering_both():
    both = Design(n=2710, cluster_size=50, icc=0.05)
    treated_only = Design(n=2710, cluster_size=50, icc=0.05, clustered_arms="treatment")
    assert mde(Design(n=2710)) < mde(treated_only) < mde(both)


def test_sample_size_reaches_the_target_power():
    design = Design(n=100, cluster_size=50, icc=0.02, clustered_arms="treatment")
    n = sample_size(0.1, design, power_target=0.9)
    assert power(0.1, Design(n=n, cluster_size=50, icc=0.02, clustered_arms="treatment")) >= 0.9
    assert power(0.1, Design(n=n - 10, cluster_size=50, icc=0.02, clustered_arms="treatment")) < 0.9


def test_invalid_design_is_refused():
    with pytest.raises(ValueError, match="icc"):
        Design(n=100, icc=1.5)
