"""The recruitment funnel as `tertulia recruit report` prints it (and `tertulia demo --recruit`
after its campaign), and its plots: one place, so the command line and the dashboard say the
same thing."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import click

from tertulia.randomization.funnel_stats import (
    LABELS,
    OVERALL,
    STAGES,
    FunnelError,
    compare,
    funnel_png,
    funnel_table,
)
from tertulia.recruitment.selectors import FunnelCounts


def _percent(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0%}"


def _money(value: float | None, currency: str) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.2f} {currency}".strip()


def funnel_title(counts: FunnelCounts, name: str) -> str:
    return "Overall" if name == OVERALL else f"{name}  {counts.names.get(name, '')}".rstrip()


def funnel_echo(
    counts: FunnelCounts,
    *,
    compare: tuple[str, str] | None = None,
    out: Path | None = None,
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Print the funnel per variant and overall (counts, share of those who started with its
    Wilson 95% interval, costs), optionally a two-variant comparison, and write the funnel PNGs
    into `out`. Raises FunnelError for counts that are not a funnel."""
    table = funnel_table(counts.by_variant, counts.costs)
    for name, rows in table.groupby("variant", sort=False):
        echo(funnel_title(counts, str(name)))
        echo(f"  {'Stage':<16}{'Men':>6}  {'From start':>10}  Wilson 95% CI")
        for row in rows.itertuples():
            interval = (
                "—"
                if math.isnan(row.from_start_low)
                else f"{row.from_start_low:.1%}–{row.from_start_high:.1%}"
            )
            echo(
                f"  {LABELS[row.stage]:<16}{row.count:>6}  {_percent(row.from_start):>10}  "
                f"{interval}"
            )
        first = rows.iloc[0]
        echo(
            f"  Cost {_money(first.cost, counts.currency)}; per randomized man "
            f"{_money(first.cost_per_enrolled, counts.currency)}; per completer "
            f"{_money(first.cost_per_completer, counts.currency)}"
        )
        echo("")
    if compare:
        compare_echo(counts.by_variant, *compare, echo=echo)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, png in funnel_pngs(counts).items():
            path = out / f"funnel-{name}.png"
            path.write_bytes(png)
            echo(f"Wrote {path}")


def overall_counts(counts: FunnelCounts) -> dict[str, int]:
    return {s: sum(c[s] for c in counts.by_variant.values()) for s in STAGES}


def funnel_pngs(counts: FunnelCounts) -> dict[str, bytes]:
    """A funnel plot per variant and one overall, by variant code (OVERALL last)."""
    return {name: funnel_plot(counts, name) for name in (*counts.by_variant, OVERALL)}


def funnel_plot(
    counts: FunnelCounts,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    overall_title: str = "Overall",
    size: tuple[float, float] = (8, 4.6),
) -> bytes:
    """The funnel PNG of one variant code, or of OVERALL; `labels` translate the stages."""
    stage_counts = overall_counts(counts) if name == OVERALL else counts.by_variant[name]
    title = overall_title if name == OVERALL else f"{name} {counts.names.get(name, '')}".strip()
    return funnel_png(stage_counts, title=title, labels=labels, size=size)


def compare_echo(
    by_variant: dict[str, dict[str, int]],
    code_a: str,
    code_b: str,
    *,
    echo: Callable[[str], None] = click.echo,
) -> None:
    a, b = by_variant[code_a], by_variant[code_b]
    echo(f"{code_a} vs {code_b}: conversion from the stage before (difference, 95% CI)")
    for before, stage in zip(STAGES, STAGES[1:], strict=False):
        try:
            result = compare((a[stage], a[before]), (b[stage], b[before]))
        except FunnelError:
            echo(f"  {LABELS[stage]:<16}not enough men at '{LABELS[before]}' to compare")
            continue
        echo(
            f"  {LABELS[stage]:<16}{result.rate_a:.0%} vs {result.rate_b:.0%}  "
            f"diff {result.difference:+.1%} [{result.low:+.1%}, {result.high:+.1%}]  "
            f"{result.method} p={result.p_value:.3f}"
        )


def funnel_summary(counts: FunnelCounts) -> list[dict[str, object]]:
    """One row per variant and overall (last) for a table: its counts at each stage, the share
    of those who started who were randomized with its Wilson 95% interval, and its costs (in
    `currency`)."""
    table = funnel_table(counts.by_variant, counts.costs)
    rows: list[dict[str, object]] = []
    for name, group in table.groupby("variant", sort=False):
        by_stage = group.set_index("stage")
        randomized = by_stage.loc["randomized"]
        rows.append(
            {
                "code": str(name),
                "name": counts.names.get(str(name), ""),
                "overall": name == OVERALL,
                "counts": {stage: int(by_stage.loc[stage, "count"]) for stage in STAGES},
                "randomized_share": _percent(randomized.from_start),
                "randomized_interval": (
                    ""
                    if math.isnan(randomized.from_start_low)
                    else f"{randomized.from_start_low:.0%}–{randomized.from_start_high:.0%}"
                ),
                "cost": _money(randomized.cost, ""),
                "per_randomized": _money(randomized.cost_per_enrolled, ""),
                "per_completer": _money(randomized.cost_per_completer, ""),
                "currency": counts.currency,
            }
        )
    return rows
