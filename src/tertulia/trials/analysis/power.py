"""Power and minimum detectable effect (MDE) for a two-arm Trial, individual or clustered.

Normal approximation, two-sided test (Bloom 1995; Duflo, Glennerster & Kremer 2007):

    SE = sigma * sqrt(1 - R^2) * sqrt(deff_T / (n P) + deff_C / (n (1 - P)))
    MDE = (z_{1-alpha/2} + z_{power}) * SE

with deff = 1 + (m - 1) * ICC for an arm delivered in groups of m. `clustered_arms="treatment"`
is the individually randomized group-treatment design of the reference study: treated men meet
in communities of about 50, control men are on their own, so only the treated arm pays the
design effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

ClusteredArms = Literal["none", "both", "treatment"]


@dataclass(frozen=True)
class Design:
    n: int
    sd: float = 1.0
    treated_share: float = 0.5
    alpha: float = 0.05
    r2: float = 0.0
    cluster_size: float = 1.0
    icc: float = 0.0
    clustered_arms: ClusteredArms = "both"

    def __post_init__(self) -> None:
        if self.n <= 2:
            raise ValueError("n must be more than 2")
        if not 0 < self.treated_share < 1:
            raise ValueError("treated_share must be between 0 and 1")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if not 0 <= self.r2 < 1:
            raise ValueError("r2 (share of variance explained by covariates) must be in [0, 1)")
        if not 0 <= self.icc <= 1:
            raise ValueError("icc must be in [0, 1]")
        if self.cluster_size < 1:
            raise ValueError("cluster_size must be at least 1")
        if self.sd <= 0:
            raise ValueError("sd must be positive")

    def design_effect(self, arm: str) -> float:
        clustered = self.clustered_arms == "both" or self.clustered_arms == arm
        return 1 + (self.cluster_size - 1) * self.icc if clustered else 1.0

    def variance_factor(self) -> float:
        """Var(estimate) * n: what the sample size divides."""
        p = self.treated_share
        return (
            self.sd**2
            * (1 - self.r2)
            * (self.design_effect("treatment") / p + self.design_effect("control") / (1 - p))
        )

    def se(self) -> float:
        return math.sqrt(self.variance_factor() / self.n)


def power(effect: float, design: Design) -> float:
    z = stats.norm.ppf(1 - design.alpha / 2)
    shift = abs(effect) / design.se()
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


def mde(design: Design, *, power_target: float = 0.8) -> float:
    if not 0 < power_target < 1:
        raise ValueError("power must be between 0 and 1")
    z = stats.norm.ppf(1 - design.alpha / 2) + stats.norm.ppf(power_target)
    return float(z * design.se())


def sample_size(effect: float, design: Design, *, power_target: float = 0.8) -> int:
    """Smallest total n reaching the target power (same shares, clusters and ICC)."""
    if effect == 0:
        raise ValueError("effect must not be zero")
    z = stats.norm.ppf(1 - design.alpha / 2) + stats.norm.ppf(power_target)
    return math.ceil(z**2 * design.variance_factor() / effect**2)
