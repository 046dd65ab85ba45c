"""The HTML report the demo writes: the funnel, the retention curve and engagement by topic,
as a folder with report.html and its PNG plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.template.loader import render_to_string

from tertulia import __version__
from tertulia.cohorts.models import Cohort
from tertulia.dashboard.plots import engagement_by_topic_png, retention_png
from tertulia.dashboard.selectors import Funnel, funnel_lines, topic_rows


def report_write(*, cohorts: list[Cohort], funnel: Funnel, out_dir: Path, title: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "retention.png").write_bytes(retention_png(funnel))
    (out_dir / "engagement_by_topic.png").write_bytes(engagement_by_topic_png(funnel))
    html = render_to_string(
        "dashboard/report.html",
        {
            "title": title,
            "cohorts": cohorts,
            "lines": funnel_lines(funnel),
            "topics": topic_rows(funnel),
            "retention_src": "retention.png",
            "topics_src": "engagement_by_topic.png",
            "generated_at": dt.datetime.now(dt.UTC),
            "version": __version__,
        },
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
