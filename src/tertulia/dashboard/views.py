"""Staff pages. Views only read through selectors and render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.dashboard.costs import cohort_costs, cost_rows
from tertulia.dashboard.plots import engagement_by_topic_png, retention_png
from tertulia.dashboard.selectors import funnel_lines, program_funnel, topic_rows
from tertulia.programs.models import Program


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
        },
    )


@login_required
def retention_plot(request: HttpRequest, slug: str) -> HttpResponse:
    _program, cohorts = _cohorts(slug)
    return HttpResponse(retention_png(program_funnel(cohorts)), content_type="image/png")


@login_required
def topics_plot(request: HttpRequest, slug: str) -> HttpResponse:
    _program, cohorts = _cohorts(slug)
    return HttpResponse(engagement_by_topic_png(program_funnel(cohorts)), content_type="image/png")
