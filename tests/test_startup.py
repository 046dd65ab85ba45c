"""What a web or worker process loads before its first request: not the plotting and
statistics libraries, which only the dashboard's drawings and reports need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("matplotlib", "pandas", "scipy", "statsmodels")

PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # every app's views, as a web process loads them
import tertulia.wsgi
import tertulia.community.relay
import tertulia.messaging.channels.whatsapp.processing
import tertulia.messaging.worker
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_web_app_and_the_worker_load_without_plotting_or_statistics(tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/probe.sqlite3")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    probe = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(probe.stdout.splitlines()[-1]))
    assert "tertulia" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_a_dashboard_plot_still_draws_a_png() -> None:
    from tertulia.dashboard.plots import retention_png
    from tertulia.dashboard.selectors import Funnel

    png = retention_png(Funnel())
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
