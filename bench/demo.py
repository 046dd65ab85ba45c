"""Benchmark: `tertulia demo` from nothing (fresh SQLite database) to the written report.

Target: the 30-day program for 2 cohorts of 50 simulated men in under 2 minutes on this 2-core
machine. Prints each run's wall time and peak memory and records them in bench/RESULTS.md.

    python bench/demo.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TERTULIA_VAR_DIR=tmp)
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "tertulia"), "demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls = []
    for i in range(args.runs):
        walls.append(one_run())
        print(f"run {i + 1}: {walls[-1]:.1f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    body = (
        "`tertulia demo` from an empty SQLite database: import the curriculum, 2 cohorts × 50 "
        "simulated men, 31 days + the closing day, funnel and report. Target: < 120 s.\n\n"
        "| runs | min (s) | median (s) | max (s) | peak memory (MB) |\n"
        "|---:|---:|---:|---:|---:|\n"
        f"| {len(walls)} | {min(walls):.1f} | {statistics.median(walls):.1f} | "
        f"{max(walls):.1f} | {peak_mb:.0f} |\n\n"
        "Measured while other work shared the machine's 2 cores; the minimum is the quieter figure."
    )
    print(body)
    from bench._results import record

    record("demo", body, command="python bench/demo.py")


if __name__ == "__main__":
    main()
