"""The numpy sandwiches (OLS HC/CR1, 2SLS, joint F) against statsmodels and linearmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linearmodels.iv import IV2SLS

from tertulia.trials.analysis import plan_from_flags
from tertulia.trials.analysis.checks import prepare
from tertulia.trials.analysis.estimate import (
    build_regressors,
    control_basis,
    extend_basis,
    iv_effect,
    ols_effect,
    wald_test,
)

TOL = 1e-8


@pytest.fixture(scope="module")
def setup(synthetic):
    plan = plan_from_flags(
        treatment="treated",
        outcomes=["communication"],
        strata="stratum",
        cluster="community",
        takeup="completed",
        covariates=["age", "urban", "children"],
        baselines={"communication": "communication_bl"},
        permutations=0,
    )
    design = prepare(synthetic.data, plan)
    y_all = design.data["communication"].to_numpy(dtype=float)
    mask = ~np.isnan(y_all)
    regressors = build_regressors(
        design, mask, baseline=["communication_bl"], covariates=["age", "urban", "children"]
    )
    return design, mask, y_all[mask], regressors


def _check(inference, result, index, df):
    ci = np.asarray(result.conf_int(0.05))[index]
    assert inference.se == pytest.approx(np.asarray(result.bse)[index], rel=TOL)
    assert inference.p == pytest.approx(np.asarray(result.pvalues)[index], rel=TOL)
    assert inference.ci_low == pytest.approx(ci[0], rel=TOL)
    assert inference.ci_high == pytest.approx(ci[1], rel=TOL)
    assert inference.df == df


def test_ols_standard_errors_equal_statsmodels(setup):
    design, mask, y, regressors = setup
    cluster = design.cluster[mask]
    effect = ols_effect(y, regressors, cluster=cluster, primary="cluster")
    fit = sm.OLS(y, regressors.matrix).fit()
    index = regressors.names.index("treatment")
    assert effect.estimate == pytest.approx(fit.params[index], rel=TOL)
    _check(effect.by_type["classical"], fit, index, fit.df_resid)
    for kind in ("HC1", "HC2"):
        robust = fit.get_robustcov_results(cov_type=kind, use_t=True)
        _check(effect.by_type[kind], robust, index, fit.df_resid)
    codes = pd.factorize(cluster)[0]
    clustered = fit.get_robustcov_results(
        cov_type="cluster", groups=codes, use_correction=True, df_correction=True, use_t=True
    )
    _check(effect.by_type["cluster"], clustered, index, float(codes.max()))


def test_cluster_codes_need_not_be_contiguous(setup):
    design, mask, y, regressors = setup
    cluster = design.cluster[mask]
    sparse_codes = ols_effect(y, regressors, cluster=cluster * 7 + 3, primary="cluster")
    labels = ols_effect(y, regressors, cluster=cluster.astype(str), primary="cluster")
    assert sparse_codes.headline.se == pytest.approx(labels.headline.se, rel=1e-12)
    assert sparse_codes.headline.df == labels.headline.df


@pytest.mark.parametrize("clustered", [False, True])
def test_tot_equals_linearmodels_on_the_partialled_out_design(setup, clustered):
    design, mask, y, regressors = setup
    basis = control_basis(regressors)
    k = basis.shape[1]
    takeup, treatment = design.takeup[mask], design.treatment[mask]
    cluster = design.cluster[mask] if clustered else None
    row = iv_effect(y, takeup, treatment, basis, cluster=cluster)

    def resid(v, name):
        return pd.Series(v - basis @ (basis.T @ v), name=name)

    endog, instrument = resid(takeup, "takeup"), resid(treatment, "treatment")
    model = IV2SLS(resid(y, "y"), None, endog, instrument)
    if clustered:
        codes = pd.factorize(cluster)[0]
        fit = model.fit(cov_type="clustered", clusters=codes, debiased=True, extra_df=k)
        first = sm.OLS(endog.to_numpy(), instrument.to_numpy()[:, None]).fit()
        first = first.get_robustcov_results(cov_type="cluster", groups=codes, use_correction=True)
    else:
        fit = model.fit(cov_type="robust", debiased=True, extra_df=k)
        first = sm.OLS(endog.to_numpy(), instrument.to_numpy()[:, None]).fit()
        first = first.get_robustcov_results(cov_type="HC1")
    ci = fit.conf_int(level=0.95).loc["takeup"]
    assert row["estimate"] == pytest.approx(fit.params["takeup"], rel=TOL)
    assert row["se"] == pytest.approx(fit.std_errors["takeup"], rel=TOL)
    assert row["p"] == pytest.approx(fit.pvalues["takeup"], rel=TOL)
    assert row["ci_low"] == pytest.approx(ci.iloc[0], rel=TOL)
    assert row["ci_high"] == pytest.approx(ci.iloc[1], rel=TOL)
    assert row["first_stage_f"] == pytest.approx(first.tvalues[0] ** 2, rel=TOL)


@pytest.mark.parametrize("cov_type", ["HC1", "nonrobust"])
def test_joint_f_test_equals_statsmodels(setup, cov_type):
    design, mask, y, regressors = setup
    tested = [regressors.names.index(c) for c in ("age", "urban", "children")]
    ours = wald_test(y, regressors.matrix, tested, cov_type=cov_type)
    fit = sm.OLS(y, regressors.matrix).fit(cov_type=cov_type)
    restriction = np.zeros((len(tested), regressors.matrix.shape[1]))
    restriction[np.arange(len(tested)), tested] = 1.0
    test = fit.f_test(restriction)
    assert ours["f"] == pytest.approx(float(np.squeeze(test.fvalue)), rel=TOL)
    assert ours["p"] == pytest.approx(float(test.pvalue), rel=TOL)
    assert ours["df_num"] == test.df_num
    assert ours["df_denom"] == test.df_denom


def test_wald_test_declines_a_collinear_block(setup):
    _, _, y, regressors = setup
    matrix = np.column_stack([regressors.matrix, regressors.matrix[:, -1] * 2])
    assert wald_test(y, matrix, [matrix.shape[1] - 1]) is None


def test_extended_basis_spans_the_design_and_is_orthonormal(setup):
    _, _, _, regressors = setup
    controls = regressors.without_treatment()[0]
    basis = extend_basis(np.linalg.qr(controls[:, :-2])[0], controls[:, -2:])
    assert basis.shape == controls.shape
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-12)
    np.testing.assert_allclose(basis @ (basis.T @ controls), controls, rtol=0, atol=1e-8)
