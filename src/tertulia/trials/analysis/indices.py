"""Anderson (2008) inverse-covariance-weighted summary indices, one per outcome family.

Following Anderson (2008, JASA 103:1481, section 3.2): orient every component so that higher
is better, standardise it by the control group's mean and standard deviation, weight the
components by the row sums of the inverse of their covariance matrix, average the components a
unit has (weights rescaled to the ones present), and standardise the result again by the
control group. Highly correlated components share weight; components carrying new information
get more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Index:
    values: pd.Series
    weights: dict[str, float]


def anderson_index(
    outcomes: pd.DataFrame, control: np.ndarray, higher_is_better: dict[str, bool]
) -> Index:
    """Index of the columns of `outcomes`; `control` flags the control units (boolean)."""
    control = np.asarray(control, dtype=bool)
    oriented = outcomes.astype(float).copy()
    for column in oriented.columns:
        if not higher_is_better.get(column, True):
            oriented[column] = -oriented[column]
    reference = oriented[control]
    sd = reference.std(ddof=1)
    constant = sd[~(sd > 0)].index.tolist()
    if constant:
        raise ValueError(
            f"index component(s) {constant} do not vary in the control group; "
            "drop them from the family's index"
        )
    z = (oriented - reference.mean()) / sd
    # Pairwise-complete covariance, as in Anderson's code, so units missing one component
    # still inform the covariance of the others.
    covariance = z.cov().to_numpy()
    weights = np.linalg.pinv(covariance).sum(axis=1)
    present = z.notna().to_numpy()
    values = np.nan_to_num(z.to_numpy()) @ weights
    weight_present = present.astype(float) @ weights
    raw = pd.Series(
        np.where(
            present.any(axis=1),
            values / np.where(weight_present == 0, np.nan, weight_present),
            np.nan,
        ),
        index=outcomes.index,
    )
    raw_control = raw[control]
    index = (raw - raw_control.mean()) / raw_control.std(ddof=1)
    return Index(values=index, weights=dict(zip(outcomes.columns, weights.tolist(), strict=True)))
