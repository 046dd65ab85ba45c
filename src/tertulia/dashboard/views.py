"""Staff pages. Views only read through selectors and render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.dashboard.costs import cohort_costs, cost_rows
from tertulia.dashboard.plots import engagement_by_topic_png, retention_png
from tertulia.dashboard.selectors import funnel_lines, program_funnel, topic_rows
from tertulia.programs.models import Program
from tertulia.randomization.funnel_stats import OVERALL
from tertulia.recruitment.models import Campaign
from tertulia.recruitment.report import funnel_plot, funnel_summary
from tertulia.recruitment.selectors import campaigns_of, funnel_counts


def _cohorts(slug: str) -> tuple[Program, list[Cohort]]:
    program = get_object_or_404(Program, slug=slug)
    return program, list(program.cohorts.select_related("curriculum").order_by("start_date", "id"))


@login_required
def home(request: HttpRequest) -> HttpResponse:
    programs = Program.objects.order_by("name")
    return render(request, "dashboard/home.html", {"programs": programs})


@login_required
def program(request: HttpRequest, slug: str) -> HttpResponse:
    program, cohorts = _cohorts(slug)
    funnel = program_funnel(cohorts)
    costs = cohort_costs(cohorts)
    rows, total = cost_rows(costs)
    running = Enrollment.objects.filter(
        cohort__in=cohorts, state__in=Enrollment.RECEIVING, ended_at__isnull=True
    )
    return render(
        request,
        "dashboard/program.html",
        {
            "program": program,
            "cohorts": cohorts,
            "funnel": funnel,
            "running": running.count(),
            "lines": funnel_lines(funnel),
            "topics": topic_rows(funnel),
            "costs": costs,
            "cost_rows": rows,
            "cost_total": total,
            "missing_prices": sorted(costs.missing_prices),
            "retention_src": reverse("dashboard:retention_png", args=[slug]),
            "topics_src": reverse("dashboard:topics_png", args=[slug]),
            **_recruitment(program, request.GET.get("campaign", "")),
        },
    )


# The table's stages: recruitment's own; baseline done is in the plots (the plots also go on
# to day 7 and completion).
SHOWN_STAGES = ("started", "eligible", "consented", "randomized")


def stage_labels() -> dict[str, str]:
    """The recruitment funnel's stages, and its plot's note, in the page's language."""
    return {
        "started": _("Started"),
        "eligible": _("Eligible"),
        "consented": _("Consented"),
        "baseline_done": _("Baseline done"),
        "randomized": _("Randomized"),
        "active_day7": _("Active on day 7"),
        "completed": _("Completed"),
        # xgettext:no-python-format
        "note": _("↓ conversion from the stage above [Wilson 95% interval]"),
        "empty": _("Nobody has started yet"),
    }


def _recruitment(program: Program, chosen: str) -> dict[str, object]:
    """The recruitment funnel of one campaign (?campaign=id; the newest by default)."""
    campaigns = campaigns_of(program)
    campaign = next((c for c in campaigns if str(c.pk) == chosen), None) or (
        campaigns[0] if campaigns else None
    )
    if campaign is None:
        return {"campaigns": []}
    counts = funnel_counts(campaign)
    labels = stage_labels()
    rows = funnel_summary(counts)
    for row in rows:
        row["label"] = _("All variants") if row["overall"] else row["name"]
        counts_by_stage = row["counts"]
        assert isinstance(counts_by_stage, dict)
        row["cells"] = [(labels[stage], counts_by_stage[stage]) for stage in SHOWN_STAGES]
        row["src"] = reverse("dashboard:funnel_png", args=[program.slug, campaign.pk, row["code"]])
    return {
        "campaigns": campaigns,
        "campaign": campaign,
        "recruitment_rows": rows,
        "stages": [(stage, labels[stage]) for stage in SHOWN_STAGES],
    }


@login_required
def funnel_plot_png(request: HttpRequest, slug: str, campaign_id: int, code: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id, program__slug=slug)
    counts = funnel_counts(campaign)
    if code != OVERALL and code not in counts.by_variant:
        raise Http404("no such variant in this campaign")
    png = funnel_plot(
        counts, code, labels=stage_labels(), overall_title=_("All variants"), size=(4.6, 3.6)
    )
    return HttpResponse(png, content_type="image/png")


@login_required
def retention_plot(request: HttpRequest, slug: str) -> HttpResponse:
    _program, cohorts = _cohorts(slug)
    return HttpResponse(retention_png(program_funnel(cohorts)), content_type="image/png")


@login_required
def topics_plot(request: HttpRequest, slug: str) -> HttpResponse:
    _program, cohorts = _cohorts(slug)
    return HttpResponse(engagement_by_topic_png(program_funnel(cohorts)), content_type="image/png")
