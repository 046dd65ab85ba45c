"""Benchmark: `tertulia demo --recruit` from nothing (fresh SQLite database in its own var
folder) to the printed funnel, at a few campaign sizes.

Target: the default (about 200 men) well under 2 minutes on this 2-core machine. Prints each
run's wall time, the men who wrote and the messages the fake accepted, and records them in
bench/RESULTS.md; the seconds per man show how the time grows with the campaign.

    python bench/recruit_demo.py [--men 50 200 400] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run(men: int) -> tuple[float, int, int]:
    """Wall seconds, men who wrote, messages the fake accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TERTULIA_VAR_DIR=tmp)
        for name in ("DATABASE_URL", "REDIS_URL", "TERTULIA_TRIAL"):
            env.pop(name, None)
        started = time.perf_counter()
        result = subprocess.run(
            [str(Path(sys.executable).parent / "tertulia"), "demo", "--recruit", "--men", str(men)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    wrote = re.search(r"(\d[\d,]*) men wrote", result.stdout)
    accepted = re.search(r"Fake accepted ([\d,]+) messages", result.stdout)
    if not wrote or not accepted:
        raise SystemExit(f"unexpected output:\n{result.stdout[-2000:]}")
    return wall, int(wrote.group(1).replace(",", "")), int(accepted.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--men", type=int, nargs="+", default=[50, 200, 400])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for men in args.men:
        walls, wrote, accepted = [], 0, 0
        for _ in range(args.runs):
            wall, wrote, accepted = one_run(men)
            walls.append(wall)
            print(f"--men {men}: {wall:.1f} s, {wrote} men wrote, {accepted} messages")
        median = statistics.median(walls)
        rows.append(
            f"| {men} | {wrote} | {accepted:,} | {len(walls)} | {min(walls):.1f} | {median:.1f} | "
            f"{median / wrote:.2f} |"
        )
    body = (
        "`tertulia demo --recruit --men N` from an empty SQLite database: three ad variants, "
        "every man's conversation through the fake WhatsApp Cloud API and our webhook view, "
        "randomization, cohorts, the funnel. Target: the default (200) well under 120 s.\n\n"
        "| --men | men who wrote | messages sent | runs | min (s) | median (s) | s per man |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Load average when it started: {load:.1f} (2 cores; other work shared the machine "
        "unless it is below 1). Compare the seconds per man across sizes within one run."
    )
    print(body)
    from bench._results import record

    record("recruit demo", body, command="python bench/recruit_demo.py")


if __name__ == "__main__":
    main()
