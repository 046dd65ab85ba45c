"""Anderson (2008) index against an independent GLS computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tertulia.trials.analysis.indices import anderson_index


@pytest.fixture
def family():
    rng = np.random.default_rng(11)
    n = 600
    common = rng.standard_normal(n)
    data = pd.DataFrame(
        {
            "a": common + rng.standard_normal(n),
            "b": 2 * common + rng.standard_normal(n) + 5,
            "c": -(common + 0.5 * rng.standard_normal(n)),  # lower is better
        }
    )
    control = np.arange(n) % 2 == 0
    return data, control


def test_index_is_the_gls_mean_of_standardized_components(family):
    data, control = family
    index = anderson_index(data, control, {"c": False})
    oriented = data.assign(c=-data.c)
    z = (oriented - oriented[control].mean()) / oriented[control].std(ddof=1)
    inverse = np.linalg.inv(np.cov(z.to_numpy(), rowvar=False))
    ones = np.ones(3)
    # GLS estimate of a common mean from one unit's three standardized outcomes.
    gls = z.to_numpy() @ inverse @ ones / (ones @ inverse @ ones)
    expected = (gls - gls[control].mean()) / gls[control].std(ddof=1)
    assert np.allclose(index.values.to_numpy(), expected)


def test_index_is_standardized_in_the_control_group(family):
    data, control = family
    values = anderson_index(data, control, {"c": False}).values
    assert values[control].mean() == pytest.approx(0, abs=1e-12)
    assert values[control].std(ddof=1) == pytest.approx(1)


def test_correlated_components_share_weight(family):
    data, control = family
    weights = anderson_index(data.assign(a2=data.a), control, {"c": False}).weights
    assert weights["a"] == pytest.approx(weights["a2"])
    assert weights["a"] < weights["b"]


def test_a_unit_missing_a_component_is_indexed_on_the_others(family):
    data, control = family
    data = data.copy()
    data.loc[1, "a"] = np.nan
    index = anderson_index(data, control, {"c": False})
    assert np.isfinite(index.values[1])
    full = anderson_index(data.drop(index=1), control[np.arange(len(data)) != 1], {"c": False})
    assert np.isfinite(full.values).all()


def test_constant_component_is_refused_by_name(family):
    data, control = family
    with pytest.raises(ValueError, match="'d'|\\['d'\\]"):
        anderson_index(data.assign(d=1.0), control, {})
