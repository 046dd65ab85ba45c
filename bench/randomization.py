"""Benchmark: assignments per second, one worker and eight workers in one stratum.

Runs on SQLite (a file under a temporary folder) and on PostgreSQL (the database in
--postgres, which must exist; its randomization rows for the bench trial are left behind,
so use a scratch database). Records the figures in bench/RESULTS.md.

    python bench/randomization.py [--men 1000] [--workers 8] \
        [--postgres postgres://postgres@127.0.0.1:5432/h7] [--skip-postgres]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = {
    "arms": [{"name": "program"}, {"name": "control"}],
    "strata": {"region": ["lima", "norte", "sur", "centro", "oriente"], "cohabiting": ["si", "no"]},
    "block_sizes": [4, 6, 8],
}


def child(men: int, workers: int) -> None:
    """Assign `men` men one after another in 10 strata, then `men` more with `workers`
    processes in one stratum. Prints one JSON line."""
    import multiprocessing

    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.db import connection, connections

    from tertulia.cohorts.models import Participant
    from tertulia.core.crypto import lookup_hash
    from tertulia.randomization.config import config_from_dict
    from tertulia.randomization.services import assignment_make, trial_create

    stamp = str(time.time_ns())[-9:]
    trial = trial_create(config=config_from_dict({"trial": f"bench-{stamp}", **CONFIG}))
    phones = [f"+5198{stamp[-3:]}{i:05d}" for i in range(2 * men)]
    Participant.objects.bulk_create(
        [Participant(phone=p, phone_hash=lookup_hash(f"{p}-{stamp}")) for p in phones]
    )
    ids = list(
        Participant.objects.filter(
            phone_hash__in=[lookup_hash(f"{p}-{stamp}") for p in phones]
        ).values_list("pk", flat=True)
    )
    sequential, parallel = ids[:men], ids[men:]
    strata = [
        {"region": r, "cohabiting": c} for r in CONFIG["strata"]["region"] for c in ("si", "no")
    ]

    started = time.perf_counter()
    for i, pk in enumerate(sequential):
        assignment_make(trial=trial, participant=Participant(pk=pk), strata=strata[i % len(strata)])
    one_worker = time.perf_counter() - started

    vendor = connection.vendor
    connections.close_all()
    context = multiprocessing.get_context("fork")

    def work(chunk: list[int]) -> None:
        connections.close_all()
        for pk in chunk:
            assignment_make(trial=trial, participant=Participant(pk=pk), strata=strata[0])
        connections.close_all()

    processes = [context.Process(target=work, args=(parallel[w::workers],)) for w in range(workers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    many_workers = time.perf_counter() - started
    assigned = trial.assignments.count()
    print(
        json.dumps(
            {
                "vendor": vendor,
                "men": men,
                "workers": workers,
                "one_worker_s": one_worker,
                "many_workers_s": many_workers,
                "assigned": assigned,
            }
        )
    )


def run(database_url: str, men: int, workers: int, var_dir: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "TERTULIA_VAR_DIR": var_dir}
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--men", str(men), "--workers", str(workers)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--men", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/h7")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.men, args.workers)
        return
    from bench._results import record

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.sqlite3", args.men, args.workers, tmp))
        if not args.skip_postgres:
            results.append(run(args.postgres, args.men, args.workers, tmp))
    lines = [
        "| database | men | sequential, 10 strata | workers, one stratum | assigned |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['vendor']} | {r['men']} | {r['one_worker_s']:.1f} s "
            f"({r['men'] / r['one_worker_s']:.0f}/s) | {r['workers']} workers: "
            f"{r['many_workers_s']:.1f} s ({r['men'] / r['many_workers_s']:.0f}/s) | "
            f"{r['assigned']} |"
        )
    body = "\n".join(lines)
    print(body)
    record(
        "Randomization: assignments per second",
        body + "\n\nEach draw locks its stratum's row (decision 0076); the workers all assign "
        "in one stratum, the worst case.",
        command="python bench/randomization.py " + " ".join(sys.argv[1:]),
    )


if __name__ == "__main__":
    main()
