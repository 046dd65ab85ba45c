"""A synthetic Trial shaped like the reference study, with known true effects.

Shape (public facts of the 2022 Peru pilot): 2,710 men randomized within strata (region x
baseline acceptance of violence), half to the program; the treated men grouped into online
communities of about 50, which share a community effect; 67% of the treated complete the
program; endline response differs by arm; outcomes reported by the men (attitudes and
practices) and by their partners (violence in the last six months).

Effects act only through completion, so the true ITT is the completer effect times the
completion rate, and the true TOT is the completer effect. Attrition is random within arm, so
ITT among respondents is unbiased and Lee bounds must contain it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tertulia.trials.analysis.plan import AnalysisPlan, plan_from_dict

REGIONS = ("lima", "north", "south", "centre", "amazon")
REGION_SHARES = (0.35, 0.2, 0.2, 0.15, 0.1)
COMPLETION_RATE = 0.67

# True ITT effects in outcome units. Partner-reported sexual violence: about -20% of the control
# rate; acceptance of violence: a few per cent of the control mean, as in the reference study.
TRUE_ITT: dict[str, float] = {
    "accept_violence": -0.12,
    "communication": 0.15,
    "chores_shared": 0.06,
    "budget_shared": 0.05,
    "sexual_violence": -0.02,
    "physical_violence": -0.015,
    "emotional_violence": -0.03,
}


@dataclass(frozen=True)
class SyntheticTrial:
    data: pd.DataFrame
    true_itt: dict[str, float]
    true_tot: dict[str, float]
    seed: int


def _bernoulli(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(p.shape) < p).astype(float)


def generate(
    n: int = 2710,
    *,
    seed: int = 2022,
    community_size: int = 50,
    response_control: float = 0.80,
    response_treatment: float = 0.86,
    partner_response: float = 0.95,
) -> SyntheticTrial:
    """Draw one synthetic Trial of `n` men; same seed, same data."""
    rng = np.random.default_rng(seed)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARES)
    age = np.clip(np.round(rng.normal(32, 7, n)), 18, 60)
    schooling = np.clip(np.round(rng.normal(11, 3, n)), 0, 18)
    urban = _bernoulli(rng, np.where(region == 0, 0.95, 0.6))
    children = rng.poisson(1.5, n).astype(float)
    cohabiting = _bernoulli(rng, np.full(n, 0.55))
    school_z = (schooling - 11) / 3

    accept_bl = rng.normal(3.0 + 0.3 * (region == 4) - 0.2 * school_z, 1.5)
    communication_bl = rng.normal(3.2 + 0.1 * school_z, 0.8)
    chores_bl = _bernoulli(rng, np.full(n, 0.35))
    budget_bl = _bernoulli(rng, np.full(n, 0.40))
    sexual_bl = _bernoulli(rng, np.full(n, 0.12))
    physical_bl = _bernoulli(rng, np.full(n, 0.15))
    emotional_bl = _bernoulli(rng, np.full(n, 0.35))

    high = accept_bl > np.median(accept_bl)
    stratum_code = region * 2 + high
    stratum = np.array([f"{r}-{h}" for r in REGIONS for h in ("low", "high")])[stratum_code]

    # Complete randomization within strata: half of each stratum, the odd unit by coin flip.
    treated = np.zeros(n)
    for code in np.unique(stratum_code):
        members = rng.permutation(np.flatnonzero(stratum_code == code))
        n_treated = members.size // 2 + int(members.size % 2 and rng.random() < 0.5)
        treated[members[:n_treated]] = 1.0

    treated_ids = rng.permutation(np.flatnonzero(treated == 1))
    n_communities = max(1, round(treated_ids.size / community_size))
    community_of = np.full(n, -1)
    for c, members in enumerate(np.array_split(treated_ids, n_communities)):
        community_of[members] = c
    width = len(str(n_communities))
    community = pd.Series(
        [f"C{c + 1:0{width}d}" if c >= 0 else None for c in community_of], dtype="object"
    )
    # Communities differ (facilitator, group dynamics): an additive shift for scores and a
    # mean-one multiplicative shift for probabilities, so averages stay exactly as designed.
    shift = rng.normal(0, 0.25, n_communities)
    factor = 1 + np.clip(rng.normal(0, 0.1, n_communities), -0.3, 0.3)
    in_community = community_of >= 0
    score_shift = np.where(in_community, shift[community_of], 0.0)
    prob_factor = np.where(in_community, factor[community_of], 1.0)

    completed = treated * _bernoulli(rng, np.full(n, COMPLETION_RATE))
    tot = {name: effect / COMPLETION_RATE for name, effect in TRUE_ITT.items()}

    def score(name: str, mean: np.ndarray, sd: float) -> np.ndarray:
        return mean + score_shift + tot[name] * completed + rng.normal(0, sd, n)

    def binary(name: str, p: np.ndarray) -> np.ndarray:
        return _bernoulli(rng, (p + tot[name] * completed) * prob_factor)

    outcomes = {
        "accept_violence": score("accept_violence", 1.0 + 0.55 * accept_bl - 0.1 * school_z, 1.1),
        "communication": score("communication", 1.3 + 0.6 * communication_bl, 0.6),
        "chores_shared": binary("chores_shared", 0.20 + 0.4 * chores_bl + 0.02 * school_z),
        "budget_shared": binary("budget_shared", 0.22 + 0.45 * budget_bl),
        "sexual_violence": binary("sexual_violence", 0.06 + 0.35 * sexual_bl),
        "physical_violence": binary("physical_violence", 0.06 + 0.3 * physical_bl),
        "emotional_violence": binary("emotional_violence", 0.12 + 0.4 * emotional_bl),
    }
    responded = _bernoulli(rng, np.where(treated == 1, response_treatment, response_control))
    partner_reached = responded * _bernoulli(rng, np.full(n, partner_response))
    for name in ("accept_violence", "communication", "chores_shared", "budget_shared"):
        outcomes[name] = np.where(responded == 1, outcomes[name], np.nan)
    for name in ("sexual_violence", "physical_violence", "emotional_violence"):
        outcomes[name] = np.where(partner_reached == 1, outcomes[name], np.nan)

    schooling_reported = np.where(rng.random(n) < 0.01, np.nan, schooling)
    data = pd.DataFrame(
        {
            "man_id": np.arange(1, n + 1),
            "region": np.array(REGIONS)[region],
            "stratum": stratum,
            "treated": treated.astype(int),
            "community": community,
            "completed": completed.astype(int),
            "attrited": (1 - responded).astype(int),
            "age": age,
            "schooling": schooling_reported,
            "urban": urban.astype(int),
            "children": children,
            "cohabiting": cohabiting.astype(int),
            **outcomes,
            "accept_violence_bl": accept_bl,
            "communication_bl": communication_bl,
            "chores_shared_bl": chores_bl.astype(int),
            "budget_shared_bl": budget_bl.astype(int),
            "sexual_violence_bl": sexual_bl.astype(int),
            "physical_violence_bl": physical_bl.astype(int),
            "emotional_violence_bl": emotional_bl.astype(int),
        }
    )
    return SyntheticTrial(data=data, true_itt=dict(TRUE_ITT), true_tot=tot, seed=seed)


DEMO_PLAN: dict[str, Any] = {
    "trial": "synthetic-guy-talk",
    "treatment": "treated",
    "strata": "stratum",
    "cluster": "community",
    "takeup": "completed",
    "attrition": "attrited",
    "covariates": ["age", "schooling", "urban", "children", "cohabiting"],
    "seed": 20220601,
    "permutations": 2000,
    "families": {
        "men": {
            "label": "Men: attitudes and practices",
            "index": True,
            "outcomes": [
                {
                    "name": "accept_violence",
                    "label": "Accepts violence (0-10)",
                    "baseline": "accept_violence_bl",
                    "higher_is_better": False,
                },
                {
                    "name": "communication",
                    "label": "Communication (1-5)",
                    "baseline": "communication_bl",
                },
                {
                    "name": "chores_shared",
                    "label": "Shares chores",
                    "baseline": "chores_shared_bl",
                },
                {
                    "name": "budget_shared",
                    "label": "Plans budget together",
                    "baseline": "budget_shared_bl",
                },
            ],
        },
        "partners": {
            "label": "Partners: violence, last 6 months",
            "index": True,
            "outcomes": [
                {
                    "name": "sexual_violence",
                    "label": "Sexual violence",
                    "baseline": "sexual_violence_bl",
                    "higher_is_better": False,
                },
                {
                    "name": "physical_violence",
                    "label": "Physical violence",
                    "baseline": "physical_violence_bl",
                    "higher_is_better": False,
                },
                {
                    "name": "emotional_violence",
                    "label": "Emotional violence",
                    "baseline": "emotional_violence_bl",
                    "higher_is_better": False,
                },
            ],
        },
    },
}


def demo_plan(**overrides: Any) -> AnalysisPlan:
    """The Analysis plan for the synthetic Trial (the same one docs/analysis-plan.md shows)."""
    return plan_from_dict({**DEMO_PLAN, **overrides}, source="synthetic trial plan")
