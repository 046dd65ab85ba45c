"""The synthetic Trial has the reference study's shape, and 95% CIs cover the truth ~95%."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tertulia.trials.analysis import run_analysis
from tertulia.trials.analysis.checks import prepare
from tertulia.trials.analysis.estimate import build_regressors, ols_effect
from tertulia.trials.analysis.synthetic import demo_plan, generate


def test_shape_matches_the_reference_study(synthetic):
    data = synthetic.data
    assert len(data) == 2710
    assert abs(data.treated.sum() - 1355) <= 10
    sizes = data.community.dropna().value_counts()
    assert sizes.between(45, 55).all()
    assert data.community[data.treated == 0].isna().all()
    assert data.completed[data.treated == 1].mean() == pytest.approx(0.67, abs=0.04)
    attrition = data.groupby("treated").attrited.mean()
    assert attrition[0] - attrition[1] > 0.02  # more control men lost at endline
    assert {"sexual_violence", "accept_violence"} <= set(data.columns)


def test_same_seed_same_trial():
    assert generate(300, seed=5).data.equals(generate(300, seed=5).data)


@pytest.mark.slow
def test_95_percent_intervals_cover_the_true_itt_close_to_nominal():
    plan = demo_plan()
    checked = ["accept_violence", "communication", "chores_shared", "sexual_violence"]
    outcomes = [o for o in plan.outcomes if o.name in checked]
    hits = []
    with threadpool_limits(limits=1, user_api="blas"):
        _draws(plan, outcomes, hits)
    coverage = float(np.mean(hits))
    # 480 intervals: the standard error of the coverage is about 0.01.
    assert 0.925 <= coverage <= 0.975, coverage


def _draws(plan, outcomes, hits):
    for draw in range(120):
        trial = generate(seed=10_000 + draw)
        design = prepare(trial.data, plan)
        for outcome in outcomes:
            y = design.data[outcome.name].to_numpy(dtype=float)
            mask = ~np.isnan(y)
            regressors = build_regressors(
                design, mask, baseline=[outcome.baseline], covariates=list(plan.covariates)
            )
            effect = ols_effect(
                y[mask],
                regressors,
                cluster=design.cluster[mask],
                primary="cluster",
                kinds=("cluster",),
            )
            ci = effect.headline
            hits.append(ci.ci_low <= trial.true_itt[outcome.name] <= ci.ci_high)


def test_full_analysis_recovers_the_known_effects_within_their_intervals(synthetic):
    results = run_analysis(synthetic.data, demo_plan(permutations=100))
    rows = {r["name"]: r for r in results["outcomes"]}
    inside = [
        rows[name]["lee_bounds"]["ci_low"] <= truth <= rows[name]["lee_bounds"]["ci_high"]
        for name, truth in synthetic.true_itt.items()
    ]
    assert sum(inside) >= 6
    assert rows["men_index"]["itt"]["estimate"] > 0
    assert rows["partners_index"]["itt"]["estimate"] > 0
