"""Benchmark: the scheduler writes one day for 100,000 enrollments in 2,000 cohorts.

Runs on SQLite and on PostgreSQL (when reachable), each in a fresh process, and records the
seconds of the scheduler's run and the process's peak memory in bench/RESULTS.md.
Target: <= 10 s and <= 500 MB each.

    python bench/schedule.py [--enrollments 100000] [--cohorts 2000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/test"
PG_BENCH = "postgres://postgres@127.0.0.1:5432/tertulia_bench"


def child(enrollments: int, cohorts: int) -> None:
    """Set up the data, then time one scheduler run. Prints one JSON line."""
    import datetime as dt
    import resource

    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.db import connection, transaction

    from tertulia.cohorts.models import Cohort, Enrollment, Participant
    from tertulia.core import crypto
    from tertulia.messaging.scheduler import outbox_enqueue_due
    from tertulia.programs.services import curriculum_import

    curriculum = curriculum_import(path=ROOT / "content" / "guy-talk" / "es-PE").curriculum
    start = dt.date(2026, 3, 2)
    setup_started = time.perf_counter()
    token = crypto.encrypt("+51900000000")  # one token for all: setup speed, not realism
    with transaction.atomic():
        made = Cohort.objects.bulk_create(
            [
                Cohort(
                    program=curriculum.program,
                    curriculum=curriculum,
                    name=f"C{i}",
                    start_date=start,
                    send_time=dt.time(19, 0),
                    capacity=50,
                )  # fmt: skip
                for i in range(cohorts)
            ]
        )
        per = enrollments // cohorts
        batch = 10_000
        for offset in range(0, enrollments, batch):
            people = Participant.objects.bulk_create(
                [
                    Participant(phone=token, phone_hash=f"h{i}")
                    for i in range(offset, offset + batch)
                ]
            )
            Enrollment.objects.bulk_create(
                [
                    Enrollment(
                        participant=p,
                        cohort=made[(offset + j) // per],
                        enrolled_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                    )  # fmt: skip
                    for j, p in enumerate(people)
                ]
            )
    # Day 0 first, then time day 1 (a full day: text, audio or image, challenge, check-in,
    # discussion).
    outbox_enqueue_due(now=dt.datetime(2026, 3, 3, 0, 1, tzinfo=dt.UTC))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    setup_seconds = time.perf_counter() - setup_started
    started = time.perf_counter()
    report = outbox_enqueue_due(now=dt.datetime(2026, 3, 4, 0, 1, tzinfo=dt.UTC))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "vendor": connection.vendor, "seconds": seconds, "peak_mb": peak_mb,
        "outbox_written": report.outbox_written, "enrollments": report.enrollments_advanced,
        "groups": report.groups, "setup_seconds": setup_seconds,
    }))  # fmt: skip


def run(database_url: str, var_dir: Path, enrollments: int, cohorts: int) -> dict:
    env = dict(os.environ, DATABASE_URL=database_url, TERTULIA_VAR_DIR=str(var_dir))
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--enrollments",
            str(enrollments),
            "--cohorts",
            str(cohorts),
        ],  # fmt: skip
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--cohorts", type=int, default=2_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.enrollments, args.cohorts)
        return

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.sqlite3", Path(tmp), args.enrollments,
                           args.cohorts))  # fmt: skip
        print(f"sqlite: {results[-1]}")
        if not args.skip_postgres:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists",
                            "tertulia_bench"], check=True)  # fmt: skip
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "tertulia_bench"],
                           check=True)  # fmt: skip
            try:
                results.append(run(PG_BENCH, Path(tmp), args.enrollments, args.cohorts))
                print(f"postgresql: {results[-1]}")
            finally:
                subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists",
                                "tertulia_bench"], check=False)  # fmt: skip

    lines = [
        f"Scheduling one day (day 1) for {args.enrollments:,} enrollments in "
        f"{args.cohorts:,} cohorts. Target: ≤ 10 s and ≤ 500 MB each.",
        "",
        "| database | seconds | peak memory (MB) | outbox rows written | enrollments advanced |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['vendor']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | "
            f"{r['outbox_written']:,} | {r['enrollments']:,} |"
        )
    lines.append("")
    lines.append(
        "Peak memory is the whole process's maximum RSS (Django and data set-up included)."
    )
    body = "\n".join(lines)
    print(body)
    from bench._results import record

    record("schedule", body, command="python bench/schedule.py")


if __name__ == "__main__":
    main()
