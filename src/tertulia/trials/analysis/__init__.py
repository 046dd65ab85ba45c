"""Trial analysis: from a survey data frame and an Analysis plan to the results table.

Every function here is pure: it takes data frames and plain values and returns new ones, so the
same code serves the CLI today and the platform's own survey exports later.
"""

from tertulia.trials.analysis.analyze import run_analysis
from tertulia.trials.analysis.errors import TrialInputError
from tertulia.trials.analysis.plan import AnalysisPlan, Family, Outcome, load_plan, plan_from_flags

__all__ = [
    "AnalysisPlan",
    "Family",
    "Outcome",
    "TrialInputError",
    "load_plan",
    "plan_from_flags",
    "run_analysis",
]
