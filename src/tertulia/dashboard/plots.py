"""The dashboard's and report's plots, drawn with matplotlib into PNG bytes."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from tertulia.core.plotting import pyplot
from tertulia.dashboard.selectors import MILESTONES, Funnel

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INK = "#1f2d3d"
ACCENT = "#d9480f"
MUTED = ["#4c6ef5", "#12b886", "#fab005", "#ae3ec9", "#868e96"]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(colors=INK)
    ax.grid(axis="y", alpha=0.25)


def retention_png(funnel: Funnel) -> bytes:
    """Share of enrolled men active on each day, per cohort and overall."""
    from matplotlib.ticker import PercentFormatter

    fig, ax = pyplot().subplots(figsize=(8, 4.2))
    data = funnel.retention
    if data.empty:
        ax.text(0.5, 0.5, _("No enrollments yet"), ha="center", va="center")
        ax.set_xticks([])  # no days to count yet
    else:
        cohorts = [c for c in data["cohort"].unique() if c != "all"]
        for colour, name in zip(MUTED, cohorts, strict=False):
            rows = data[data["cohort"] == name]
            ax.plot(rows["day"], rows["share"], color=colour, lw=1.4, alpha=0.8, label=name)
        overall = data[data["cohort"] == "all"]
        ax.plot(overall["day"], overall["share"], color=ACCENT, lw=2.8, label=_("All cohorts"))
        for day in MILESTONES:
            point = overall[overall["day"] == day]
            if not point.empty:
                share = float(point["share"].iloc[0])
                ax.axvline(day, color=INK, lw=0.6, ls=":", alpha=0.5)
                ax.annotate(
                    f"{share:.0%}",
                    (day, share),
                    xytext=(4, 8),
                    textcoords="offset points",
                    color=ACCENT,
                    fontweight="bold",
                )
        ax.set_xlim(0, int(data["day"].max()))
        ax.legend(frameon=False, loc="lower left")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(_("Program day"))
    ax.set_ylabel(_("Active men (read or wrote in the last 7 days)"))
    ax.set_title(_("Retention"), loc="left", color=INK, fontweight="bold")
    _style(ax)
    return _png(fig)


def engagement_by_topic_png(funnel: Funnel) -> bytes:
    """Check-in response rate on each topic's days."""
    from matplotlib.ticker import PercentFormatter

    fig, ax = pyplot().subplots(figsize=(8, 3.8))
    data = funnel.checkins_by_topic
    if data.empty:
        ax.text(0.5, 0.5, _("No check-ins sent yet"), ha="center", va="center")
    else:
        data = data.sort_values("rate")
        bars = ax.barh(data["label"], data["rate"], color=MUTED[0])
        for bar, (_i, row) in zip(bars, data.iterrows(), strict=True):
            ax.text(
                bar.get_width() + 0.01,
                bar.get_y() + bar.get_height() / 2,
                f"{row['rate']:.0%}  ({row['answered']:,}/{row['sent']:,})",
                va="center",
                color=INK,
                fontsize=9,
            )
        ax.set_xlim(0, 1.15)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(_("Check-ins answered"))
    ax.set_title(_("Engagement by topic"), loc="left", color=INK, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", alpha=0.25)
    return _png(fig)
