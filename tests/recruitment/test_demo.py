"""`tertulia demo --recruit` as a new user runs it, on a fresh SQLite database in its own var
folder: a campaign of three ad variants through the fake WhatsApp Cloud API, screening, consent,
baseline and randomization, then the funnel per variant; the rows it leaves are what it says."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    var = tmp_path_factory.mktemp("recruit-demo")
    env = {**os.environ, "TERTULIA_VAR_DIR": str(var)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.pop("TERTULIA_TRIAL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tertulia.cli", "demo", "--recruit", "--men", "40"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, var / "tertulia.sqlite3"


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def printed_funnel(output: str) -> dict[str, dict[str, int]]:
    """{code or 'Overall': {stage label: men}} from the printed report."""
    funnel: dict[str, dict[str, int]] = {}
    current = ""
    for line in output.splitlines():
        if re.match(r"^(D\d+-\w+|Overall)\b", line):
            current = line.split()[0]
            funnel[current] = {}
        elif current and (found := re.match(r"^  ([A-Z][a-z ]+?\d?)\s+(\d+)\s+\d+%", line)):
            funnel[current][found.group(1).strip()] = int(found.group(2))
    return funnel


def test_the_funnel_is_printed_per_variant_and_matches_the_rows(demo_run) -> None:
    output, db = demo_run
    funnel = printed_funnel(output)
    codes = [code for code in funnel if code != "Overall"]
    assert [c.split("-")[1] for c in codes] == ["HUMOR", "PAPA", "PREG"]
    started = dict(
        rows(
            db,
            "SELECT v.code, COUNT(*) FROM recruitment_screening s "
            "JOIN recruitment_advariant v ON v.id = s.variant_id GROUP BY v.code",
        )
    )
    randomized = dict(
        rows(
            db,
            "SELECT v.code, COUNT(*) FROM recruitment_screening s JOIN recruitment_advariant v "
            "ON v.id = s.variant_id WHERE s.state = 'randomized' GROUP BY v.code",
        )
    )
    for code in codes:
        assert funnel[code]["Started"] == started[code]
        assert funnel[code]["Randomized"] == randomized.get(code, 0)
        assert funnel[code]["Eligible"] <= funnel[code]["Started"]
    assert funnel["Overall"]["Started"] == sum(started.values())
    # The variants' seeded response rates show: B (4.5%) brings the most men, C (1.8%) the fewest.
    assert started[codes[1]] > started[codes[0]] > started[codes[2]]
    # Some arrived by the ad's referral object rather than the code in the text.
    assert (
        rows(db, "SELECT COUNT(*) FROM recruitment_screening WHERE attributed_by = 'referral'")[0][
            0
        ]
        > 0
    )


def test_every_path_of_the_conversation_happened_once_per_man(demo_run) -> None:
    output, db = demo_run
    states = dict(rows(db, "SELECT state, COUNT(*) FROM recruitment_screening GROUP BY state"))
    assert {"ineligible", "declined", "withdrawn", "randomized"} <= set(states)
    assert f"randomized {states['randomized']}" in output
    # Each randomized man has one assignment, and one arm; nobody was randomized twice.
    assignments = rows(
        db, "SELECT participant_id, COUNT(*) FROM randomization_assignment GROUP BY participant_id"
    )
    assert len(assignments) == states["randomized"]
    assert {n for _, n in assignments} == {1}
    arms = dict(
        rows(db, "SELECT arm, COUNT(*) FROM recruitment_screening WHERE arm != '' GROUP BY arm")
    )
    assert set(arms) == {"program", "control"}
    assert f"control {arms['control']}, program {arms['program']}" in output
    # Answers not understood were asked again; one man's went to a person.
    assert rows(db, "SELECT COUNT(*) FROM recruitment_screeninganswer WHERE valid = 0")[0][0] > 0
    assert rows(db, "SELECT COUNT(*) FROM recruitment_screening WHERE needs_person = 1")[0][0] >= 1
    # Partner contacts: some men gave one, some did not; one consent row per man and kind.
    partner = dict(
        rows(
            db,
            "SELECT accepted, COUNT(*) FROM recruitment_consent "
            "WHERE kind = 'partner_contact' GROUP BY accepted",
        )
    )
    assert partner.get(1, 0) > 0 and partner.get(0, 0) > 0
    assert rows(db, "SELECT COUNT(*) FROM recruitment_partnercontact")[0][0] == partner[1]
    # BAJA during screening was recorded.
    assert (
        rows(db, "SELECT COUNT(*) FROM recruitment_screening WHERE withdrawn_at IS NOT NULL")[0][0]
        >= 1
    )
    # A man who wrote the ad code again once randomized was refused kindly, not re-screened.
    refused = re.search(r"refused kindly and not randomized again: (\d+)", output)
    assert refused and int(refused.group(1)) >= 1
    assert rows(db, "SELECT name, simulated FROM randomization_trial") == [("hablemos-demo", 1)]
    assert "Waiting (tertulia randomization waitlist):" in output
    assert "offered the program after the endline" in output
