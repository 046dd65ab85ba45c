"""The recruitment funnel's statistics, as pure functions over counts (no Django, no database).

Stages, in order: started (first message), eligible, consented, baseline done, randomized,
active on day 7, completed. For each ad variant and overall: the conversion from the previous
stage and from the start with Wilson 95% intervals, the cost per enrolled (randomized) man and
per completer, a test of the difference between two variants, and a funnel plot (PNG).

The counts come from whoever keeps them (the recruitment app); this module only computes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tertulia.core.plotting import pyplot

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STAGES = (
    "started",
    "eligible",
    "consented",
    "baseline_done",
    "randomized",
    "active_day7",
    "completed",
)
LABELS = {
    "started": "Started",
    "eligible": "Eligible",
    "consented": "Consented",
    "baseline_done": "Baseline done",
    "randomized": "Randomized",
    "active_day7": "Active on day 7",
    "completed": "Completed",
    # Not stages: the plot's note and its text when nobody has started.
    "note": "↓ conversion from the stage above [Wilson 95% interval]",
    "empty": "Nobody has started yet",
}
ENROLLED = "randomized"
COMPLETED = "completed"
OVERALL = "overall"
# Below this expected count in any cell the normal approximation is poor: use Fisher's test.
MIN_EXPECTED = 5


class FunnelError(ValueError):
    """Counts that cannot be a funnel; the message says which stage to fix."""


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    rate: float  # nan when there were no trials
    low: float
    high: float


def rate(successes: int, trials: int, *, alpha: float = 0.05) -> Rate:
    """Share with its Wilson interval (good at small counts and near 0 or 1)."""
    if trials < 0 or successes < 0 or successes > trials:
        raise FunnelError(f"{successes} out of {trials} is not a proportion")
    if trials == 0:
        return Rate(successes, trials, math.nan, math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, trials, alpha=alpha, method="wilson")
    return Rate(successes, trials, successes / trials, float(low), float(high))


def counts_check(counts: Mapping[str, int], *, variant: str = "") -> dict[str, int]:
    """The counts in stage order (a missing stage is 0), refusing negative or growing ones."""
    where = f"variant '{variant}': " if variant else ""
    unknown = set(counts) - set(STAGES)
    if unknown:
        raise FunnelError(f"{where}unknown stages {sorted(unknown)} (use {', '.join(STAGES)})")
    checked: dict[str, int] = {}
    previous = None
    for stage in STAGES:
        value = counts.get(stage, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FunnelError(f"{where}'{stage}' is {value!r}; give a whole number, 0 or more")
        if previous is not None and value > checked[previous]:
            raise FunnelError(
                f"{where}'{stage}' ({value}) is more than '{previous}' ({checked[previous]}); "
                "each stage counts men who also reached the one before"
            )
        checked[stage] = value
        previous = stage
    return checked


def cost_per(cost: float, count: int) -> float | None:
    """Cost per man; None when there is nobody to divide by."""
    if cost < 0:
        raise FunnelError(f"a cost of {cost} is negative")
    return cost / count if count else None


def funnel_table(
    by_variant: Mapping[str, Mapping[str, int]],
    costs: Mapping[str, float] | None = None,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per variant (and 'overall', their sum) and stage: count, conversion from the
    previous stage and from the start with Wilson intervals, and the variant's cost per enrolled
    man and per completer (the same on each of its rows)."""
    costs = costs or {}
    if OVERALL in by_variant:
        raise FunnelError(f"'{OVERALL}' is computed here; name the variant otherwise")
    if unknown := set(costs) - set(by_variant):
        raise FunnelError(f"costs given for unknown variants {sorted(unknown)}")
    checked = {name: counts_check(counts, variant=name) for name, counts in by_variant.items()}
    checked[OVERALL] = {s: sum(c[s] for c in checked.values()) for s in STAGES}
    spend = {**costs, OVERALL: sum(costs.values())} if costs else {}
    rows = []
    for name, counts in checked.items():
        cost = spend.get(name)
        per_enrolled = cost_per(cost, counts[ENROLLED]) if cost is not None else None
        per_completer = cost_per(cost, counts[COMPLETED]) if cost is not None else None
        for i, stage in enumerate(STAGES):
            step = rate(counts[stage], counts[STAGES[i - 1]] if i else counts[stage], alpha=alpha)
            start = rate(counts[stage], counts["started"], alpha=alpha)
            rows.append(
                {
                    "variant": name,
                    "stage": stage,
                    "count": counts[stage],
                    "step_rate": step.rate,
                    "step_low": step.low,
                    "step_high": step.high,
                    "from_start": start.rate,
                    "from_start_low": start.low,
                    "from_start_high": start.high,
                    "cost": cost,
                    "cost_per_enrolled": per_enrolled,
                    "cost_per_completer": per_completer,
                }
            )
    import pandas as pd

    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    method: str  # "z-test" or "fisher"
    rate_a: float
    rate_b: float
    difference: float  # rate_a - rate_b
    low: float  # Newcombe interval of the difference
    high: float
    statistic: float  # z, or Fisher's odds ratio
    p_value: float


def compare(a: tuple[int, int], b: tuple[int, int], *, alpha: float = 0.05) -> Comparison:
    """Test whether two variants convert differently: a and b are (successes, trials).
    A two-sided z-test of two proportions, or Fisher's exact test when an expected cell count
    is below 5."""
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    (xa, na), (xb, nb) = a, b
    for x, n in (a, b):
        rate(x, n)  # refuses impossible counts
    if na == 0 or nb == 0:
        raise FunnelError("both variants need at least one man at the earlier stage")
    pooled = (xa + xb) / (na + nb)
    expected = [n * p for n in (na, nb) for p in (pooled, 1 - pooled)]
    low, high = confint_proportions_2indep(xa, na, xb, nb, method="newcomb", alpha=alpha)
    common = {
        "rate_a": xa / na,
        "rate_b": xb / nb,
        "difference": xa / na - xb / nb,
        "low": float(low),
        "high": float(high),
    }
    if min(expected) < MIN_EXPECTED:
        odds, p = fisher_exact([[xa, na - xa], [xb, nb - xb]], alternative="two-sided")
        return Comparison(method="fisher", statistic=float(odds), p_value=float(p), **common)
    z, p = proportions_ztest([xa, xb], [na, nb], alternative="two-sided")
    return Comparison(method="z-test", statistic=float(z), p_value=float(p), **common)


def _data_width(ax: Axes, label: Any, renderer: Any) -> float:
    """How wide a text is, in the axes' data units."""
    box = label.get_window_extent(renderer=renderer)
    (left, _), (right, _) = ax.transData.inverted().transform([(box.x0, 0), (box.x1, 0)])
    return float(right - left)


def funnel_png(
    counts: Mapping[str, int],
    *,
    title: str,
    labels: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    size: tuple[float, float] = (8, 4.6),
) -> bytes:
    """A funnel for one variant: a centred bar per stage with its count, its share of those
    who started, and the conversion from the stage before with its Wilson interval."""
    fig = funnel_figure(counts, title=title, labels=labels, alpha=alpha, size=size)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def funnel_figure(
    counts: Mapping[str, int],
    *,
    title: str,
    labels: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    size: tuple[float, float] = (8, 4.6),
) -> Figure:
    """The figure funnel_png draws (the caller closes it)."""
    checked = counts_check(counts, variant=title)
    labels = {**LABELS, **(labels or {})}
    started = checked["started"]
    widest = max(started, 1)
    fig, ax = pyplot().subplots(figsize=size)
    ax.set_xlim(0, widest * 1.3)  # before the labels are measured against the bars
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for i, stage in enumerate(STAGES):
        y = len(STAGES) - 1 - i
        n = checked[stage]
        ax.barh(y, n, left=(widest - n) / 2, height=0.72, color="#4c6ef5", alpha=0.35 + 0.09 * i)
        if started:
            text = f"{n:,}  ({n / started:.0%})"
            label = ax.text(
                widest / 2, y, text, ha="center", va="center", color="#1f2d3d", fontsize=10
            )
            if n and _data_width(ax, label, renderer) > n * 0.92:
                # Too wide for its bar (the last stages are narrow): beside the bar instead.
                label.set_x((widest + n) / 2 + widest * 0.015)
                label.set_horizontalalignment("left")
            elif not n:
                label.set_color("#868e96")
        if i:
            step = rate(n, checked[STAGES[i - 1]], alpha=alpha)
            if not math.isnan(step.rate):
                ax.text(
                    widest * 1.02,
                    y + 0.5,
                    f"↓ {step.rate:.0%} [{step.low:.0%}–{step.high:.0%}]",
                    va="center",
                    fontsize=8,
                    color="#d9480f",
                )
    ax.set_yticks(range(len(STAGES)), [labels[s] for s in reversed(STAGES)])
    ax.tick_params(axis="y", length=0)
    ax.set_xticks([])
    ax.spines[["top", "right", "bottom", "left"]].set_visible(False)
    if started:
        ax.set_xlabel(labels["note"], loc="right", color="#d9480f", fontsize=8)
    else:
        ax.text(widest * 0.65, len(STAGES) / 2, labels["empty"], ha="center", color="#868e96")
    ax.set_title(title, loc="left", color="#1f2d3d", fontweight="bold")
    return fig
