"""ITT, TOT and the design matrix, against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from tertulia.trials.analysis import plan_from_flags, run_analysis
from tertulia.trials.analysis.checks import prepare
from tertulia.trials.analysis.estimate import build_regressors, ols_effect


def test_itt_with_strata_and_baseline_matches_a_statsmodels_formula(synthetic):
    data = synthetic.data
    plan = plan_from_flags(
        treatment="treated",
        outcomes=["communication"],
        strata="stratum",
        baselines={"communication": "communication_bl"},
        permutations=0,
    )
    row = run_analysis(data, plan)["outcomes"][0]
    fit = smf.ols("communication ~ treated + C(stratum) + communication_bl", data).fit(
        cov_type="HC1"
    )
    assert row["itt"]["estimate"] == pytest.approx(fit.params["treated"], rel=1e-10)
    assert row["se_alternatives"]["HC1"] == pytest.approx(fit.bse["treated"], rel=1e-10)
    assert row["itt"]["se_type"] == "HC2"


def test_cluster_se_treats_control_men_as_their_own_clusters(synthetic):
    data = synthetic.data.dropna(subset=["communication"])
    plan = plan_from_flags(
        treatment="treated", outcomes=["communication"], cluster="community", permutations=0
    )
    row = run_analysis(data, plan)["outcomes"][0]
    groups = data.community.fillna(data.man_id.astype(str)).to_numpy()
    fit = smf.ols("communication ~ treated", data).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]}
    )
    assert row["itt"]["se_type"] == "cluster"
    assert row["itt"]["se"] == pytest.approx(fit.bse["treated"], rel=1e-10)


def test_tot_without_covariates_is_the_wald_ratio(synthetic):
    data = synthetic.data.dropna(subset=["communication"])
    plan = plan_from_flags(
        treatment="treated", outcomes=["communication"], takeup="completed", permutations=0
    )
    row = run_analysis(data, plan)["outcomes"][0]
    arms = data.groupby("treated")[["communication", "completed"]].mean()
    wald = (arms.communication[1] - arms.communication[0]) / (arms.completed[1] - arms.completed[0])
    assert row["tot"]["estimate"] == pytest.approx(wald, rel=1e-10)
    assert row["tot"]["first_stage_f"] > 100


def test_pct_of_control_mean_is_the_effect_over_the_control_mean(synthetic):
    plan = plan_from_flags(treatment="treated", outcomes=["sexual_violence"], permutations=0)
    row = run_analysis(synthetic.data, plan)["outcomes"][0]
    assert row["pct_of_control_mean"] == pytest.approx(
        100 * row["itt"]["estimate"] / row["control_mean"]
    )


def test_collinear_covariate_is_dropped_with_a_warning_naming_it(synthetic):
    data = synthetic.data.assign(age_months=synthetic.data.age * 12)
    plan = plan_from_flags(
        treatment="treated",
        outcomes=["communication"],
        covariates=["age", "age_months"],
        permutations=0,
    )
    results = run_analysis(data, plan)
    assert any("'age_months' is collinear with age" in w for w in results["warnings"])
    assert results["outcomes"][0]["itt"]["se"] > 0


def test_design_matrix_puts_treatment_second_and_drops_the_first_stratum(synthetic):
    plan = plan_from_flags(treatment="treated", outcomes=["communication"], strata="stratum")
    design = prepare(synthetic.data, plan)
    regressors = build_regressors(design, np.ones(design.n, dtype=bool), baseline=[], covariates=[])
    assert regressors.names[:2] == ["const", "treatment"]
    assert len(regressors.names) == 2 + len(design.strata_labels) - 1
    effect = ols_effect(design.treatment, regressors, primary="HC1")
    assert effect.estimate == pytest.approx(1.0)


@pytest.mark.parametrize("clustered", [False, True])
def test_tot_with_controls_equals_linearmodels_on_the_full_design(synthetic, clustered):
    from linearmodels.iv import IV2SLS

    data = synthetic.data.dropna(subset=["communication"]).reset_index(drop=True)
    plan = plan_from_flags(
        treatment="treated",
        outcomes=["communication"],
        strata="stratum",
        takeup="completed",
        covariates=["age", "urban"],
        baselines={"communication": "communication_bl"},
        cluster="community" if clustered else None,
        permutations=0,
    )
    row = run_analysis(data, plan)["outcomes"][0]
    exog = pd.get_dummies(data.stratum, drop_first=True, dtype=float).assign(
        const=1.0, communication_bl=data.communication_bl, age=data.age, urban=data.urban
    )
    model = IV2SLS(data.communication, exog, data.completed, data.treated)
    if clustered:
        groups = pd.factorize(data.community.fillna(data.man_id.astype(str)))[0]
        fit = model.fit(cov_type="clustered", clusters=groups, debiased=True)
    else:
        fit = model.fit(cov_type="robust", debiased=True)
    assert row["tot"]["estimate"] == pytest.approx(fit.params["completed"], rel=1e-9)
    assert row["tot"]["se"] == pytest.approx(fit.std_errors["completed"], rel=1e-9)
    assert row["tot"]["ci_low"] == pytest.approx(fit.conf_int().loc["completed", "lower"], rel=1e-4)
