"""Bad input gives a clear error or warning naming the column and what to do; never a NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tertulia.trials.analysis import TrialInputError, plan_from_flags, run_analysis
from tertulia.trials.analysis.plan import plan_from_dict


def _run(data, **flags):
    flags.setdefault("permutations", 0)
    return run_analysis(data, plan_from_flags(**flags))


def test_missing_column_is_named_with_its_role(synthetic):
    with pytest.raises(TrialInputError, match=r"'wellbeing' \(outcome\).*Columns available"):
        _run(synthetic.data, treatment="treated", outcomes=["wellbeing"])


def test_treatment_not_coded_0_1_says_how_to_recode(synthetic):
    data = synthetic.data.assign(arm=synthetic.data.treated + 1)
    with pytest.raises(TrialInputError, match=r"'arm' must be coded 0/1; found values \[1, 2\]"):
        _run(data, treatment="arm", outcomes=["communication"])


def test_text_treatment_is_refused_as_not_numeric(synthetic):
    data = synthetic.data.assign(arm=np.where(synthetic.data.treated == 1, "program", "control"))
    with pytest.raises(TrialInputError, match="treatment 'arm' is not numeric"):
        _run(data, treatment="arm", outcomes=["communication"])


def test_empty_arm_is_an_error(synthetic):
    data = synthetic.data[synthetic.data.treated == 1]
    with pytest.raises(TrialInputError, match=r"'treated' has no control \(0\) units"):
        _run(data, treatment="treated", outcomes=["communication"])


def test_missing_assignment_is_an_error(synthetic):
    data = synthetic.data.astype({"treated": float})
    data.loc[3, "treated"] = np.nan
    with pytest.raises(TrialInputError, match="'treated' has 1 missing value"):
        _run(data, treatment="treated", outcomes=["communication"])


def test_constant_outcome_is_listed_without_estimates_and_with_a_warning(synthetic):
    data = synthetic.data.assign(always=1.0)
    results = _run(data, treatment="treated", outcomes=["always", "communication"])
    row = results["outcomes"][0]
    assert row["skipped"] and "constant" in row["skipped"]
    assert "itt" not in row
    assert any("'always' is constant" in w for w in results["warnings"])
    assert results["outcomes"][1]["itt"]["se"] > 0


def test_too_few_clusters_warns_and_points_to_ri(synthetic):
    data = synthetic.data.assign(
        community=np.where(synthetic.data.treated == 1, synthetic.data.man_id % 6, np.nan)
    )
    results = _run(data, treatment="treated", outcomes=["communication"], cluster="community")
    assert any(
        "only 6 clusters in the treatment arm" in w and "ri_p" in w for w in results["warnings"]
    )


def test_single_cluster_is_an_error(synthetic):
    data = synthetic.data.assign(village="only")
    with pytest.raises(TrialInputError, match="'village' holds a single cluster"):
        _run(data, treatment="treated", outcomes=["communication"], cluster="village")


def test_covariate_that_is_the_assignment_is_refused(synthetic):
    data = synthetic.data.assign(copy=synthetic.data.treated)
    results = _run(data, treatment="treated", outcomes=["communication"], covariates=["copy"])
    # The assignment comes first, so the copy is the collinear one and is dropped by name.
    assert any("'copy' is collinear with treatment" in w for w in results["warnings"])


def test_unknown_plan_key_is_named():
    with pytest.raises(TrialInputError, match=r"unknown key\(s\) \['outcome_families'\]"):
        plan_from_dict({"treatment": "t", "outcomes": ["y"], "outcome_families": {}})


def test_results_never_hold_nan(synthetic):
    data = synthetic.data.assign(always=0.0)
    results = _run(
        data,
        treatment="treated",
        outcomes=["always", "sexual_violence"],
        attrition="attrited",
        takeup="completed",
        strata="stratum",
        cluster="community",
        permutations=50,
    )
    json.dumps(results, allow_nan=False)  # raises on NaN or infinity
