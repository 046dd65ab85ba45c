"""The WhatsApp demo: program days through the fake Cloud API and our own webhook view, with
simulated men replying; every message reaches the fake once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tertulia.messaging.channels.whatsapp.demo import demo_whatsapp
from tertulia.messaging.models import CheckInResponse, Message, WebhookEvent
from tests.conftest import MINI


@pytest.mark.django_db(transaction=True)
def test_the_demo_runs_days_end_to_end_through_the_fake() -> None:
    if connection.vendor == "sqlite":
        # The in-memory SQLite test database cannot take writes from the in-process web server
        # and this thread at once; the CLI test below runs the demo on a SQLite file instead.
        pytest.skip("needs a database that takes concurrent writers")
    report = demo_whatsapp(content=MINI, men=3, days=2, reply_probability=1.0, seed=7)
    # No man had written before day 0, and each day opens 24 h after the last: every day
    # opens with a template; each man answered it, so the rest of the day went free-form.
    assert [d.templates for d in report.days] == [3, 3]
    assert [d.held for d in report.days] == [0, 0]
    assert [d.expired for d in report.days] == [0, 0]
    # Every man tapped every check-in; what some wrote besides was relayed to the others.
    assert CheckInResponse.objects.count() == 3 * 2
    assert report.accepted == sum(d.sent for d in report.days)
    assert report.duplicates == 0
    assert report.read == report.accepted
    assert sum(d.failed for d in report.days) == 0
    assert Message.objects.filter(direction=Message.Direction.IN).count() >= 3 * 2
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_the_demo_command_runs_on_a_sqlite_file(tmp_path: Path) -> None:
    """The command a new user runs, on a SQLite file: it ends, and the fake's own log shows
    every message sent exactly once. (It used to hang: the simulated men answered the
    community posts relayed to them, which were relayed again, without end.)"""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "TERTULIA_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    args = ["channel", "demo-whatsapp", "--men", "3", "--days", "2", "--content", str(MINI)]
    result = subprocess.run(
        [sys.executable, "-m", "tertulia.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    days = re.findall(r"day \d+: sent (\d+) \((\d+) as templates\)", result.stdout)
    assert len(days) == 2, result.stdout
    # Day 0: no man has written yet, so each gets the opening template first.
    assert int(days[0][1]) == 3
    total = sum(int(sent) for sent, _ in days)
    assert f"fake accepted {total} messages, 0 duplicates; {total} read" in result.stdout


def test_the_main_demo_runs_through_whatsapp(tmp_path: Path) -> None:
    """`tertulia demo --channel whatsapp`, as a new user runs it, on a SQLite file."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "TERTULIA_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    args = ["demo", "--channel", "whatsapp", "--size", "2", "--days", "1", "--content", str(MINI)]
    result = subprocess.run(
        [sys.executable, "-m", "tertulia.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WhatsApp demo: 2 men, 1 days, through the fake Cloud API" in result.stdout
    assert re.search(r"day 0: sent \d+ \(2 as templates\)", result.stdout), result.stdout
    assert ", 0 duplicates;" in result.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "tertulia.cli", "demo", "--days", "3"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--days is for --channel whatsapp" in refused.stderr
