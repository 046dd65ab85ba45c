"""The demo runs a whole program in simulated time through the real task queue, prints the
funnel and writes the report; the same seed gives the same run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from django.conf import settings

from tertulia.cli import main
from tertulia.cohorts.models import Enrollment
from tertulia.messaging.models import Message, Outbox
from tertulia.simulation.models import SimulatedDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def run_demo(mini_path: Path, out: Path, seed: int = 7) -> str:
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--content",
            str(mini_path),
            "--cohorts",
            "2",
            "--size",
            "10",
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--optout-rate",
            "0.3",
        ],  # fmt: skip
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def funnel_numbers(output: str) -> list[str]:
    table = output[output.index("Funnel") : output.index("Report:")]
    return re.findall(r"\d[\d,]*", table)


def test_the_demo_prints_the_funnel_and_writes_the_report(mini_path: Path, tmp_path: Path) -> None:
    output = run_demo(mini_path, tmp_path / "report")
    for label in ("Enrolled", "Completed", "Opted out (BAJA)", "Check-in response rate by topic"):
        assert label in output
    assert re.search(r"Enrolled\s+│\s+20\b", output)
    for name in ("report.html", "retention.png", "engagement_by_topic.png"):
        assert (tmp_path / "report" / name).exists()
    assert (tmp_path / "report" / "retention.png").read_bytes().startswith(b"\x89PNG")
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'src="retention.png"' in html and "Demo 1" in html

    # The facilitator's password is printed with the file that keeps it, wherever var/ is.
    kept = settings.VAR_DIR / "facilitador-password.txt"
    assert f"also in {kept}" in output.replace("\n", "")
    assert kept.read_text().strip() in output

    # Every man's state is one the engine can reach, and what was sent went out once.
    states = set(Enrollment.objects.values_list("state", flat=True))
    assert states <= {"completed", "dropped", "opted_out"}
    sent = Outbox.objects.filter(status=Outbox.Status.SENT).count()
    assert SimulatedDelivery.objects.count() == sent
    assert Message.objects.filter(direction="out", status="pending").count() == 0


def test_nothing_reaches_a_man_after_his_baja(mini_path: Path, tmp_path: Path) -> None:
    run_demo(mini_path, tmp_path / "report")
    opted_out = Enrollment.objects.filter(state=Enrollment.State.OPTED_OUT)
    assert opted_out.exists()
    for enrollment in opted_out:
        baja = Message.objects.get(enrollment=enrollment, direction="in", keyword="stop")
        after = Message.objects.filter(
            participant=enrollment.participant, direction="out", created_at__gte=baja.created_at
        )
        assert [m.kind for m in after] == ["text"]  # the one confirmation


def test_the_same_seed_gives_the_same_funnel(mini_path: Path, tmp_path: Path) -> None:
    first = funnel_numbers(run_demo(mini_path, tmp_path / "a", seed=11))
    second = funnel_numbers(run_demo(mini_path, tmp_path / "b", seed=11))
    assert first == second
